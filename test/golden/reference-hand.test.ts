// A 1-layer, 2-dimensional LLaMA whose logprobs are computed by hand (each step below; the decimals
// were evaluated with Python's math module, an implementation independent of ours).
import { describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../runners/arch.ts';
import { loadReferenceModel } from '../../runners/reference-weights.ts';
import { referenceLogits, referenceTokenLogprobs } from '../../runners/reference.ts';

const config = {
  model_type: 'llama',
  vocab_size: 2,
  hidden_size: 2,
  intermediate_size: 1,
  num_hidden_layers: 1,
  num_attention_heads: 1,
  num_key_value_heads: 1,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: false,
};

const weights = new Map<string, number[]>([
  ['model.embed_tokens.weight', [1, 1, 1, -1]], // token 0 = [1, 1], token 1 = [1, -1]: mean square 1
  ['model.layers.0.input_layernorm.weight', [1, 1]],
  ['model.layers.0.post_attention_layernorm.weight', [1, 1]],
  ['model.layers.0.self_attn.q_proj.weight', [0, 0, 0, 0]], // q = 0: all scores 0, uniform attention
  ['model.layers.0.self_attn.k_proj.weight', [1, 0, 0, 1]],
  ['model.layers.0.self_attn.v_proj.weight', [1, 0, 0, 1]],
  ['model.layers.0.self_attn.o_proj.weight', [0.5, 0, 0, 0.5]],
  ['model.layers.0.mlp.gate_proj.weight', [1, 0]], // gate = n[0]
  ['model.layers.0.mlp.up_proj.weight', [0, 1]], // up = n[1]
  ['model.layers.0.mlp.down_proj.weight', [1, 0]], // out = [silu(n[0]) * n[1], 0]
  ['model.norm.weight', [1, 1]],
  ['lm_head.weight', [1, 0, 0, 1]], // logits = final hidden state
]);

const source = {
  has: (name: string) => weights.has(name),
  readFloat32: (name: string) => Float32Array.from(weights.get(name)!),
};

describe('reference forward on a hand-computed 1-layer model', () => {
  const arch = parseModelConfig(config, 'hand config');
  const model = loadReferenceModel(arch, config, source);

  it('gives the hand-computed logits and token logprobs for [0, 1]', () => {
    // n = x / sqrt(1 + 1e-6) for both embeddings.
    // Attention: position 0 sees only itself -> 0.5 * n0 ≈ [0.5, 0.5]; position 1 averages v0, v1
    //   -> 0.5 * (n0 + n1) / 2 ≈ [0.5, 0]. Residual: h0 ≈ [1.5, 1.5], h1 ≈ [1.5, -1].
    // MLP: rms(h0) = 1.5 -> n = [1, 1] -> silu(1) * 1 = 0.7310585786 -> h0 = [2.2310579600, 1.4999997500].
    //      rms(h1) = sqrt(1.625) -> n = [1.1766968, -0.7844645] -> silu(1.1766968) * -0.7844645
    //      = -0.7055567 -> h1 = [0.7944432598, -1.0].
    // Final RMSNorm: f0 = [1.1736218029599967, 0.7890572287131437], f1 = [0.8796947193309919, -1.1073096895230667].
    const logits = referenceLogits(model, [0, 1]);
    expect(logits[0]![0]).toBeCloseTo(1.1736218029599967, 12);
    expect(logits[0]![1]).toBeCloseTo(0.7890572287131437, 12);
    expect(logits[1]![0]).toBeCloseTo(0.8796947193309919, 12);
    expect(logits[1]![1]).toBeCloseTo(-1.1073096895230667, 12);
    // log_softmax(f0)[1] = 0.7890572287 - ln(e^1.1736218030 + e^0.7890572287) = -0.9038029036328816
    const lp = referenceTokenLogprobs(model, [0, 1]);
    expect(lp[0]).toBeNull();
    expect(lp[1]).toBeCloseTo(-0.9038029036328816, 12);
  });

  it('asks the weight reader for the shapes config.json implies', () => {
    const bad = { has: source.has, readFloat32: (name: string, opts?: { expectShape?: readonly number[] }) => {
      if (name === 'lm_head.weight') expect(opts?.expectShape).toEqual([2, 2]); // [vocab, hidden] from config
      return source.readFloat32(name);
    } };
    expect(() => loadReferenceModel(arch, config, bad)).not.toThrow();
  });
});
