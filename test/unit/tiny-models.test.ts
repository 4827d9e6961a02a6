// Tiny checkpoints: deterministic generation into a real HF layout, loading through the same code as
// any checkpoint (BF16 + sharded included), and the bad-input errors of checkpoint loading.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../harness/errors.ts';
import { readCheckpointDir, resolveLocalCheckpoint } from '../../runners/hf/checkpoint.ts';
import { writeSafetensors } from '../../runners/hf/safetensors.ts';
import { loadReferenceFromCheckpoint } from '../../runners/reference-weights.ts';
import { referenceTokenLogprobs } from '../../runners/reference.ts';
import { ensureTinyCheckpoint, seededNormal, writeTinyCheckpoint } from '../../runners/tiny.ts';
import { LlamaTokenizer } from '../../runners/tokenizer.ts';

const cache = mkdtempSync(join(tmpdir(), 'tiny-models-'));
const env = { ...process.env, LLAMA_EVAL_CACHE: cache };
afterAll(() => rmSync(cache, { recursive: true, force: true }));

describe('tiny checkpoint generation', () => {
  it('writes a real HF checkpoint directory into $LLAMA_EVAL_CACHE/tiny/<id>', () => {
    const dir = ensureTinyCheckpoint('tiny-llama-4', { env });
    expect(dir).toBe(join(cache, 'tiny', 'tiny-llama-4'));
    expect(readdirSync(dir).sort()).toEqual(
      ['.llama-eval-tiny.json', 'config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'].sort(),
    );
    const ckpt = resolveLocalCheckpoint('tiny-llama-4', { env });
    expect('download' in ckpt).toBe(false);
    if ('download' in ckpt) return;
    expect(ckpt.arch.modelType).toBe('llama4');
    expect(ckpt.generationConfig).toMatchObject({ bos_token_id: 1, eos_token_id: 2 });
  });

  it('is deterministic: two generations are byte-identical', () => {
    const a = mkdtempSync(join(cache, 'a-'));
    const b = mkdtempSync(join(cache, 'b-'));
    writeTinyCheckpoint('tiny-llama-4', a);
    writeTinyCheckpoint('tiny-llama-4', b);
    expect(readFileSync(join(a, 'model.safetensors')).equals(readFileSync(join(b, 'model.safetensors')))).toBe(true);
  });

  it('draws weights with the initializer_range standard deviation', () => {
    // N(0, 0.02²): over 100,000 draws the sample std is within 1% of 0.02 (its standard error is 0.22%).
    const x = seededNormal(7, 100_000, 0.02);
    const mean = x.reduce((s, v) => s + v, 0) / x.length;
    const std = Math.sqrt(x.reduce((s, v) => s + (v - mean) ** 2, 0) / x.length);
    expect(Math.abs(mean)).toBeLessThan(0.0003);
    expect(std / 0.02).toBeCloseTo(1, 1.7);
  });

  it('tiny-llama-2 uses the real LLaMA 2 vocabulary', () => {
    const dir = ensureTinyCheckpoint('tiny-llama-2', { env });
    // meta-llama/Llama-2-7b-hf: "Hello world" -> [1, 15043, 3186] (issue #4).
    expect(LlamaTokenizer.fromDir(dir).encode('Hello world')).toEqual([1, 15043, 3186]);
  });
});

describe('loading tiny checkpoints through the HF path', () => {
  it('a BF16 checkpoint in 3 shards gives the same logprobs as the BF16 single file', () => {
    const single = mkdtempSync(join(cache, 'bf16-1-'));
    const sharded = mkdtempSync(join(cache, 'bf16-3-'));
    writeTinyCheckpoint('tiny-llama-4', single, { dtype: 'BF16' });
    writeTinyCheckpoint('tiny-llama-4', sharded, { dtype: 'BF16', numShards: 3 });
    expect(readdirSync(sharded).filter((f) => f.endsWith('.safetensors'))).toHaveLength(3);
    const ids = [1, 80, 319, 119, 40, 282, 329, 116, 108];
    const lpSingle = referenceTokenLogprobs(loadReferenceFromCheckpoint(readCheckpointDir(single, 'x', 'path')), ids);
    const lpSharded = referenceTokenLogprobs(loadReferenceFromCheckpoint(readCheckpointDir(sharded, 'x', 'path')), ids);
    expect(lpSharded).toEqual(lpSingle);
    // And close to the float32 checkpoint: bf16 keeps 8 mantissa bits (relative error <= 2^-9).
    const f32 = referenceTokenLogprobs(loadReferenceFromCheckpoint(readCheckpointDir(ensureTinyCheckpoint('tiny-llama-4', { env }), 'x', 'path')), ids);
    f32.slice(1).forEach((lp, i) => expect(Math.abs(lp! - lpSingle[i + 1]!)).toBeLessThan(1e-2));
  });

  function brokenCopy(name: string): string {
    const dir = join(cache, name);
    mkdirSync(dir, { recursive: true });
    writeTinyCheckpoint('tiny-llama-4', dir);
    return dir;
  }

  function inputError(fn: () => unknown): string {
    try {
      fn();
    } catch (error) {
      expect(error).toBeInstanceOf(InputError);
      expect((error as Error).message).not.toContain('\n');
      return (error as Error).message;
    }
    throw new Error('expected an InputError');
  }

  it('a tensor with the wrong shape names the tensor and both shapes', () => {
    const dir = brokenCopy('wrong-shape');
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, hidden_size: 32 }));
    const msg = inputError(() => loadReferenceFromCheckpoint(readCheckpointDir(dir, 'x', 'path')));
    // Layer 0 of tiny-llama-4 is dense: its MLP gate_proj is [intermediate_size_mlp 176, hidden].
    expect(msg).toBe(`${join(dir, 'model.safetensors')}: tensor "model.layers.0.feed_forward.gate_proj.weight" has shape [176, 64], expected [176, 32] from config.json`);
  });

  it('an unsupported model_type names the file and the supported types', () => {
    const dir = brokenCopy('mistral');
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'mistral', hidden_size: 64 }));
    expect(inputError(() => readCheckpointDir(dir, 'x', 'path'))).toBe(
      `${join(dir, 'config.json')}: unsupported model_type "mistral" (supported: llama, mllama, mllama_text_model, llama4, llama4_text)`,
    );
  });

  it('a missing tensor names it', () => {
    const dir = brokenCopy('missing-tensor');
    writeSafetensors(join(dir, 'model.safetensors'), [{ name: 'model.embed_tokens.weight', shape: [512, 64], data: new Float32Array(512 * 64) }]);
    expect(inputError(() => loadReferenceFromCheckpoint(readCheckpointDir(dir, 'x', 'path')))).toMatch(/checkpoint has no tensor "model\.layers\.0\.feed_forward\.gate_proj\.weight"/);
  });
});
