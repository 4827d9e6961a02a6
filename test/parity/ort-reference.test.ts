// The ORT graph (runners/ort/llama-graph.ts) against the float64 reference forward
// (runners/reference.ts), the oracle written from the papers and HF's modeling code: token
// logprobs agree to 1e-4 (issue 4 acceptance) on every tiny model, both with the generated
// weights and with sharpened ones that make attention, RoPE and MoE routing decisive.
import { afterAll, describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../runners/arch.ts';
import { InputError } from '../../results/errors.ts';
import { OrtLlamaModel, ortTokenLogprobs } from '../../runners/ort/llama-model.ts';
import { loadReferenceModel, loadReferenceFromCheckpoint, type TensorSource } from '../../runners/reference-weights.ts';
import { referenceTokenLogprobs } from '../../runners/reference.ts';
import { maxAbsDiff, sharpenedWeights, spreadIds, tinyCache, TINY_IDS } from './ort-helpers.ts';

const cache = tinyCache('ort-reference-');
afterAll(() => cache.cleanup());

// tiny-llama-4: 40 tokens, past its attention_chunk_size 16 (two chunk boundaries) and its
// floor_scale 8 (temperature tuning changes every 8 positions). The others: 24 tokens (the float64
// reference's 128K-vocab lm_head dominates the test time and no feature of theirs depends on length).
const lengthOf = (id: string): number => (id === 'tiny-llama-4' ? 40 : 24);
const LENGTH = 40;
const TOLERANCE = 1e-4;

describe('ORT graph vs float64 reference: token logprobs', () => {
  it.each(TINY_IDS)('%s with its generated weights agrees within 1e-4', async (id) => {
    const checkpoint = cache.checkpoint(id);
    const ids = spreadIds(lengthOf(id), checkpoint.arch.text.vocabSize);
    const model = await OrtLlamaModel.fromCheckpoint(checkpoint, { intraOpThreads: 1 });
    try {
      const diff = maxAbsDiff(await ortTokenLogprobs(model, ids), referenceTokenLogprobs(loadReferenceFromCheckpoint(checkpoint), ids));
      expect(diff).toBeLessThanOrEqual(TOLERANCE);
    } finally {
      await model.close();
    }
  });

  it.each(TINY_IDS)('%s with weights x8 (sharp attention and routing) agrees within 1e-4', async (id) => {
    const checkpoint = cache.checkpoint(id);
    const source = sharpenedWeights(checkpoint, 8);
    const reference = loadReferenceModel(checkpoint.arch, checkpoint.config, source);
    const ids = spreadIds(lengthOf(id), checkpoint.arch.text.vocabSize, 1);
    const expected = referenceTokenLogprobs(reference, ids);
    // Sanity of the fixture: predictions are far from uniform, so a wrong feature would show.
    const uniform = -Math.log(checkpoint.arch.text.vocabSize);
    expect(Math.max(...expected.slice(1).map((x) => Math.abs(x! - uniform)))).toBeGreaterThan(1);
    const model = await OrtLlamaModel.create(checkpoint.arch, checkpoint.config, source, { intraOpThreads: 1 });
    try {
      expect(maxAbsDiff(await ortTokenLogprobs(model, ids), expected)).toBeLessThanOrEqual(TOLERANCE);
    } finally {
      await model.close();
    }
  });

  // No tiny model uses linear or dynamic RoPE scaling (LLaMA 2 fine-tunes such as LongChat and
  // CodeLlama-style configs do), so switch them on in tiny-llama-2's config.
  it.each([
    ['linear', { rope_type: 'linear', factor: 4 }, 4096],
    // max_position_embeddings 16 < 40 tokens, so the dynamic NTK base actually changes.
    ['dynamic', { rope_type: 'dynamic', factor: 2 }, 16],
  ])('rope_scaling %s agrees within 1e-4', async (_name, ropeScaling, maxPos) => {
    const checkpoint = cache.checkpoint('tiny-llama-2');
    const config = { ...checkpoint.config, rope_scaling: ropeScaling, max_position_embeddings: maxPos };
    const arch = parseModelConfig(config, 'test config');
    const source = sharpenedWeights(checkpoint, 8);
    const ids = spreadIds(LENGTH, arch.text.vocabSize, 2);
    const expected = referenceTokenLogprobs(loadReferenceModel(arch, config, source), ids);
    const unscaled = referenceTokenLogprobs(loadReferenceModel(checkpoint.arch, checkpoint.config, source), ids);
    expect(maxAbsDiff(expected, unscaled)).toBeGreaterThan(1e-3); // the scaling matters here
    const model = await OrtLlamaModel.create(arch, config, source, { intraOpThreads: 1 });
    try {
      expect(maxAbsDiff(await ortTokenLogprobs(model, ids), expected)).toBeLessThanOrEqual(TOLERANCE);
    } finally {
      await model.close();
    }
  });
});

/** Adds small deterministic biases for every `*.bias` tensor the config asks for. */
function withBiases(source: TensorSource): TensorSource {
  return {
    has: (name) => name.endsWith('.bias') || source.has(name),
    readFloat32: (name, options) => {
      if (!name.endsWith('.bias')) return source.readFloat32(name, options);
      const n = options?.expectShape?.[0] ?? 0;
      return Float32Array.from({ length: n }, (_, i) => 0.3 * Math.sin(i + name.length));
    },
  };
}

describe('ORT graph vs float64 reference: config switches no tiny model uses', () => {
  it.each([
    ['tiny-llama-2', 'attention_bias and mlp_bias', { attention_bias: true, mlp_bias: true }],
    ['tiny-llama-4', 'top-2 routing', { num_experts_per_tok: 2 }],
    ['tiny-llama-4', 'no QK-norm, no temperature tuning', { use_qk_norm: false, attn_temperature_tuning: false }],
    ['tiny-llama-4', 'MoE on every layer, no chunking', { interleave_moe_layer_step: 1, attention_chunk_size: null }],
  ] as const)('%s with %s agrees within 1e-4', async (id, _what, overrides) => {
    const checkpoint = cache.checkpoint(id);
    const config = { ...checkpoint.config, ...overrides };
    const arch = parseModelConfig(config, 'test config');
    const base = sharpenedWeights(checkpoint, 8);
    // MoE on every layer: the dense layers' tensors are absent, so reuse layer 1's MoE weights.
    const source = withBiases({
      has: base.has,
      readFloat32: (name, options) => {
        const moe = /^model\.layers\.(\d+)\.feed_forward\.(router|experts|shared_expert)/.exec(name);
        return base.readFloat32(moe && !base.has(name) ? name.replace(/layers\.\d+\./, 'layers.1.') : name, options);
      },
    });
    const ids = spreadIds(lengthOf(id), arch.text.vocabSize, 3);
    const expected = referenceTokenLogprobs(loadReferenceModel(arch, config, source), ids);
    const model = await OrtLlamaModel.create(arch, config, source, { intraOpThreads: 1 });
    try {
      expect(maxAbsDiff(await ortTokenLogprobs(model, ids), expected)).toBeLessThanOrEqual(TOLERANCE);
    } finally {
      await model.close();
    }
  });
});

describe('ORT graph: bad input', () => {
  it('refuses a tensor whose shape disagrees with config.json, naming it', async () => {
    const checkpoint = cache.checkpoint('tiny-llama-1');
    const config = { ...checkpoint.config, intermediate_size: 100 };
    const arch = parseModelConfig(config, 'test config');
    const { CheckpointWeights } = await import('../../runners/hf/weights.ts');
    const weights = CheckpointWeights.open(checkpoint.dir);
    try {
      await expect(OrtLlamaModel.create(arch, config, weights)).rejects.toThrow(/gate_proj\.weight/);
    } finally {
      weights.close();
    }
  });

  it('refuses mllama (3.2 Vision) with an InputError', async () => {
    const arch = parseModelConfig(
      { model_type: 'mllama', text_config: { vocab_size: 8, hidden_size: 8, intermediate_size: 8, num_hidden_layers: 1, num_attention_heads: 2 }, vision_config: {} },
      'config.json',
    );
    const none = { has: () => false, readFloat32: (): Float32Array => { throw new Error('unreachable'); } };
    await expect(OrtLlamaModel.create(arch, {}, none)).rejects.toThrow(InputError);
  });

  it('refuses token ids outside the vocabulary', async () => {
    const model = await OrtLlamaModel.fromCheckpoint(cache.checkpoint('tiny-llama-4'), { intraOpThreads: 1 });
    try {
      await expect(ortTokenLogprobs(model, [1, 512])).rejects.toThrow(/outside the vocabulary \[0, 512\)/);
    } finally {
      await model.close();
    }
  });
});
