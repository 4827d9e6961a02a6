// `llama-eval export` writes the transformers.js layout (config.json, tokenizer files,
// onnx/model.onnx), and the written graph scores like the float64 reference.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../runners/arch.ts';
import * as exportCommand from '../../harness/cli/export.ts';
import { InputError } from '../../results/errors.ts';
import { readCheckpointDir } from '../../runners/hf/checkpoint.ts';
import { buildLlamaGraph } from '../../runners/ort/llama-graph.ts';
import { logSoftmaxRow } from '../../runners/ort/llama-model.ts';
import { OrtSession } from '../../runners/ort/session.ts';
import { loadReferenceFromCheckpoint } from '../../runners/reference-weights.ts';
import { referenceTokenLogprobs } from '../../runners/reference.ts';

const root = mkdtempSync(join(tmpdir(), 'ort-export-'));
process.env.LLAMA_EVAL_CACHE = join(root, 'cache'); // the command reads the cache location from the environment
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('llama-eval export', () => {
  it('writes config, tokenizer and onnx/model.onnx, and the written model matches the reference (1e-4)', async () => {
    const out = join(root, 'tiny-llama-4-onnx');
    let printed = '';
    expect(await exportCommand.run({ model: 'tiny-llama-4', out }, { out: (s) => (printed += s), err: () => {} })).toBe(0);
    expect(printed).toMatch(/onnx\/model\.onnx/);
    for (const f of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/model.onnx']) expect(existsSync(join(out, f))).toBe(true);
    const session = await OrtSession.create(readFileSync(join(out, 'onnx', 'model.onnx')), { intraOpThreads: 1 });
    try {
      const ids = [1, 80, 319, 7, 42, 500, 3];
      const empty = { data: new Float32Array(0), dims: [1, 2, 0, 16] }; // tiny-llama-4: 2 kv heads, head_dim 16
      const feeds: Record<string, { data: Float32Array | BigInt64Array; dims: number[] }> = {
        input_ids: { data: BigInt64Array.from(ids.map(BigInt)), dims: [1, ids.length] },
        attention_mask: { data: BigInt64Array.from(ids.map(() => 1n)), dims: [1, ids.length] },
        position_ids: { data: BigInt64Array.from(ids.map((_, i) => BigInt(i))), dims: [1, ids.length] },
      };
      for (let i = 0; i < 4; i++) feeds[`past_key_values.${i}.key`] = feeds[`past_key_values.${i}.value`] = empty;
      const logits = (await session.run(feeds)).logits!.data as Float32Array;
      const checkpoint = readCheckpointDir(out, 'exported', 'path');
      const expected = referenceTokenLogprobs(loadReferenceFromCheckpoint(readCheckpointDir(join(root, 'cache', 'tiny', 'tiny-llama-4'), 'tiny-llama-4', 'tiny')), ids);
      expect(checkpoint.arch.modelType).toBe('llama4');
      ids.slice(1).forEach((id, i) => expect(Math.abs(logSoftmaxRow(logits, i, 512)[id]! - expected[i + 1]!)).toBeLessThanOrEqual(1e-4));
    } finally {
      await session.close();
    }
  });

  it('refuses a model over the 2 GiB protobuf limit before reading any weight', () => {
    // LLaMA-7B shapes (Touvron et al. 2023): 6.7B fp32 parameters, about 25 GiB.
    const arch = parseModelConfig(
      { model_type: 'llama', vocab_size: 32000, hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32 },
      'config.json',
    );
    const untouched = { has: () => true, readFloat32: (): Float32Array => { throw new Error('read a weight'); } };
    expect(() => buildLlamaGraph(arch, untouched, { temperatureTuning: null })).toThrow(InputError);
    expect(() => buildLlamaGraph(arch, untouched, { temperatureTuning: null })).toThrow(/2 GiB limit/);
  });
});
