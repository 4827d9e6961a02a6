// `llama-eval quantize --to nf4`: the checkpoint layout transformers + bitsandbytes save for a 4-bit
// model (names, dtypes and shapes from bitsandbytes QuantState.as_dict(packed=True) and
// transformers' BitsAndBytesConfig), and reading it back.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { run } from '../../harness/cli/quantize.ts';
import { readCheckpointDir } from '../../runners/hf/checkpoint.ts';
import { SafetensorsFile } from '../../runners/hf/safetensors.ts';
import { loadReferenceFromNf4Checkpoint } from '../../runners/quant/nf4-checkpoint.ts';
import { quantizeReferenceNf4 } from '../../runners/quant/nf4-model.ts';
import { loadReferenceFromCheckpoint } from '../../runners/reference-weights.ts';
import { referenceTokenLogprobs } from '../../runners/reference.ts';
import { ensureTinyCheckpoint } from '../../runners/tiny.ts';
import { InputError } from '../../results/errors.ts';

const tmp = mkdtempSync(join(tmpdir(), 'nf4-ckpt-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const env = { LLAMA_EVAL_CACHE: join(tmp, 'cache') };

describe('NF4 checkpoint (quantize --to nf4)', () => {
  const srcDir = ensureTinyCheckpoint('tiny-llama-3', { env });
  const out = join(tmp, 'nf4');
  const io = { lines: [] as string[], out(s: string) { this.lines.push(s); }, err(s: string) { this.lines.push(s); } };

  it('writes the bitsandbytes tensor set for every quantized Linear', async () => {
    expect(await run({ model: srcDir, to: 'nf4', out, json: true }, io)).toBe(0);
    const result = JSON.parse(io.lines.join(''));
    expect(result.quantized_tensors).toBe(2 * 7); // tiny-llama-3: 2 layers x (q, k, v, o, gate, up, down)
    expect(result.bytes_out).toBeLessThan(result.bytes_in);
    const file = SafetensorsFile.open(join(out, 'model.safetensors'));
    try {
      const w = 'model.layers.0.self_attn.q_proj.weight';
      const info = (name: string) => ({ dtype: file.info(name).dtype, shape: file.info(name).shape });
      // q_proj of tiny-llama-3: [64, 64] = 4096 values -> 2048 bytes [n/2, 1]; 64 blocks of 64; 1 group of 256.
      expect(info(w)).toEqual({ dtype: 'U8', shape: [2048, 1] });
      expect(info(`${w}.absmax`)).toEqual({ dtype: 'U8', shape: [64] });
      expect(info(`${w}.quant_map`)).toEqual({ dtype: 'F32', shape: [16] });
      expect(info(`${w}.nested_absmax`)).toEqual({ dtype: 'F32', shape: [1] });
      expect(info(`${w}.nested_quant_map`)).toEqual({ dtype: 'F32', shape: [256] });
      const state = JSON.parse(new TextDecoder().decode(file.readBytes(`${w}.quant_state.bitsandbytes__nf4`)));
      // QuantState.as_dict: the non-tensor entries, packed as JSON.
      expect(Object.keys(state)).toEqual(['quant_type', 'blocksize', 'dtype', 'shape', 'nested_blocksize', 'nested_dtype', 'nested_offset']);
      expect(state).toMatchObject({ quant_type: 'nf4', blocksize: 64, dtype: 'float32', shape: [64, 64], nested_blocksize: 256, nested_dtype: 'float32' });
      // Not quantized: embeddings, norms, lm_head (transformers keeps lm_head in full precision).
      expect(info('model.embed_tokens.weight').dtype).toBe('F32');
      expect(info('lm_head.weight').dtype).toBe('F32');
      expect(info('model.layers.0.input_layernorm.weight').dtype).toBe('F32');
    } finally {
      file.close();
    }
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(config.quantization_config).toMatchObject({ quant_method: 'bitsandbytes', load_in_4bit: true, bnb_4bit_quant_type: 'nf4', bnb_4bit_use_double_quant: true });
  });

  it('reads back to exactly the in-memory NF4 round trip, and stays close to the float model', () => {
    const base = loadReferenceFromCheckpoint(readCheckpointDir(srcDir, 'tiny-llama-3', 'tiny'));
    const fromFile = loadReferenceFromNf4Checkpoint(readCheckpointDir(out, 'nf4', 'path'));
    const inMemory = quantizeReferenceNf4(base);
    // Large typed arrays are compared by a count of differing entries (a failing toEqual would print them all).
    const differing = (a: Float32Array, b: Float32Array) => a.reduce((n, x, i) => n + (Object.is(x, b[i]) ? 0 : 1), a.length === b.length ? 0 : Infinity);
    fromFile.layers.forEach((l, i) => {
      expect(differing(l.q, inMemory.layers[i]!.q)).toBe(0);
      expect(differing(l.mlp!.down, inMemory.layers[i]!.mlp!.down)).toBe(0);
      expect(differing(l.q, base.layers[i]!.q)).toBeGreaterThan(1000);
    });
    expect(differing(fromFile.lmHead, base.lmHead)).toBe(0);
    const ids = [1, 17, 99, 5, 300];
    const a = referenceTokenLogprobs(base, ids);
    const b = referenceTokenLogprobs(fromFile, ids);
    // Weights of std 0.02 quantized with ~7% mean error shift tiny-model logprobs by well under 0.1 nat.
    for (let i = 1; i < ids.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(0.1);
  });

  it('refuses an existing non-empty output directory and an already-quantized model', async () => {
    await expect(run({ model: srcDir, to: 'nf4', out: srcDir }, io)).rejects.toThrow(/already exists and is not an empty directory/);
    await expect(run({ model: out, to: 'nf4', out: join(tmp, 'again') }, io)).rejects.toThrow(InputError);
  });
});
