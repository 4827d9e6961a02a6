import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureRandomCheckpoint, randomModelConfig, uniformNoise, writeRandomCheckpoint } from '../../harness/bench/random-checkpoint.ts';
import { decodeWeightBytesPerToken } from '../../harness/bench/measure.ts';
import { CheckpointWeights } from '../../runners/hf/weights.ts';
import { textTensorSpecs } from '../../runners/hf/tensor-names.ts';
import { InputError } from '../../results/errors.ts';

const dirs: string[] = [];
const scratch = () => {
  const d = mkdtempSync(join(tmpdir(), 'bench-random-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

describe('random-weight checkpoints shaped like zoo models', () => {
  it('the llama-3.2-1b shape has the published parameter count', () => {
    const { arch } = randomModelConfig('llama-3.2-1b');
    // HF API "meta-llama/Llama-3.2-1B-Instruct" safetensors total: 1,235,814,400 (tied lm_head counted once).
    expect(textTensorSpecs(arch).reduce((n, s) => n + numel(s.shape), 0)).toBe(1_235_814_400);
  });

  it('cuts the layer count and rejects impossible ones, non-LLaMA and unknown models', () => {
    expect(randomModelConfig('llama-3.2-1b', 2).arch.text.numLayers).toBe(2);
    for (const layers of [0, 17, 1.5]) expect(() => randomModelConfig('llama-3.2-1b', layers)).toThrow(InputError);
    expect(() => randomModelConfig('llama-4-scout')).toThrow(/model_type "llama"/);
    expect(() => randomModelConfig('llama-9-1b')).toThrow(InputError);
  });

  it('uniform noise has the requested standard deviation and bounds', () => {
    const std = 0.02;
    const x = uniformNoise(200_000, std, 7);
    const mean = x.reduce((a, b) => a + b, 0) / x.length;
    const sd = Math.sqrt(x.reduce((a, b) => a + (b - mean) ** 2, 0) / x.length);
    // U(-a, a) has variance a^2 / 3, so a = std * sqrt(3) gives standard deviation std.
    expect(sd).toBeGreaterThan(std * 0.98);
    expect(sd).toBeLessThan(std * 1.02);
    expect(Math.abs(mean)).toBeLessThan(std * 0.01);
    expect(x.every((v) => Math.abs(v) <= std * Math.sqrt(3))).toBe(true);
  });

  it('writes every tensor of the config with its shape, and a weights file of 4 bytes per parameter', () => {
    const dir = scratch();
    writeRandomCheckpoint('tiny-llama-3', dir);
    const { arch } = randomModelConfig('tiny-llama-3');
    const weights = CheckpointWeights.open(dir);
    try {
      const specs = textTensorSpecs(arch);
      expect(weights.names().sort()).toEqual(specs.map((s) => s.name).sort());
      for (const s of specs) expect(weights.info(s.name).shape).toEqual(s.shape);
      const norm = weights.readFloat32('model.norm.weight');
      expect(norm.every((v) => v === 1)).toBe(true);
      const q = weights.readFloat32('model.layers.1.self_attn.q_proj.weight');
      expect(q.some((v) => v !== 0)).toBe(true);
      // Different tensors are different windows of the noise pool.
      expect(weights.readFloat32('model.layers.0.self_attn.q_proj.weight').slice(0, 16)).not.toEqual(q.slice(0, 16));
    } finally {
      weights.close();
    }
    const params = textTensorSpecs(arch).reduce((n, s) => n + numel(s.shape), 0);
    const size = statSync(join(dir, 'model.safetensors')).size;
    expect(size - 4 * params).toBeGreaterThan(8); // 8-byte length + JSON header
    expect(size - 4 * params).toBeLessThan(64 * 1024);
  });

  it('is written once into the cache and reused', () => {
    const env = { LLAMA_EVAL_CACHE: scratch() };
    const dir = ensureRandomCheckpoint('tiny-llama-3', { env, layers: 1 });
    const mtime = statSync(join(dir, 'model.safetensors')).mtimeMs;
    expect(ensureRandomCheckpoint('tiny-llama-3', { env, layers: 1 })).toBe(dir);
    expect(statSync(join(dir, 'model.safetensors')).mtimeMs).toBe(mtime);
  });
});

describe('decode weight bytes per token', () => {
  it('counts every weight once for a tied model (lm_head is the embedding matrix)', () => {
    // HF API figure for Llama-3.2-1B, as above; fp32 = 4 bytes each, f16 = 2.
    expect(decodeWeightBytesPerToken(randomModelConfig('llama-3.2-1b').arch)).toBe(4 * 1_235_814_400);
    expect(decodeWeightBytesPerToken(randomModelConfig('llama-3.2-1b').arch, 2)).toBe(2 * 1_235_814_400);
  });

  it('counts one embedding row for an untied model', () => {
    // Meta-Llama-3-8B: 8,030,261,248 parameters (HF API safetensors total); its input embedding is
    // 128256 x 4096, of which a decode step reads one row of 4096.
    expect(decodeWeightBytesPerToken(randomModelConfig('llama-3-8b').arch)).toBe(4 * (8_030_261_248 - 128256 * 4096 + 4096));
  });
});
