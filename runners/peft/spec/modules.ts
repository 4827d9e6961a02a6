// The HF module tree of a LLaMA-family `*ForCausalLM` text model, as PEFT sees it: every module that
// PEFT's name matching can land on, under its full dotted key (`model.layers.3.self_attn.q_proj`), with
// the shapes that decide how many parameters an adapter on it has. Built from `linearModules` (the
// `nn.Linear` list of runners/arch-modules.ts) plus the embedding and the RMSNorms, so that LoRA targeting,
// `modules_to_save` and LLaMA-Adapter V2's norm tuning all match names the way PEFT does.
//
// Key layout (transformers modeling files):
// - llama   `LlamaForCausalLM`:  model.embed_tokens, model.layers.N.{self_attn,mlp}.X, model.layers.N.
//           {input_layernorm,post_attention_layernorm}, model.norm, lm_head.
// - mllama  `MllamaForCausalLM`: cross-attention layers hold `cross_attn` (MllamaTextCrossAttention,
//           with q_norm/k_norm RMSNorms over head_dim) instead of `self_attn`.
// - llama4  `Llama4ForCausalLM`: the MLP is `feed_forward` (Llama4TextMLP or Llama4TextMoe with
//           `router`, `shared_expert.X` and the fused `experts.gate_up_proj` / `experts.down_proj`
//           parameters, which are nn.Parameter, not modules).
// A checkpoint loaded as `*ForConditionalGeneration` nests the same text modules one level deeper
// (`model.language_model.layers...`); short names and suffixes match identically there.

import type { TextArch } from '../../arch.ts';
import { linearModules, type LinearGroup } from '../../arch-modules.ts';

export type ModuleKind = 'linear' | 'embedding' | 'norm';

/** One module instance of the text model. */
export interface ModuleInstance {
  /** Full dotted module name, as `model.named_modules()` yields it. */
  key: string;
  /** The last name segment (`q_proj`, `input_layernorm`, `lm_head`...). */
  name: string;
  kind: ModuleKind;
  group: LinearGroup | 'embedding' | 'norm';
  /** Linear: in_features; embedding: num_embeddings; norm: normalized size. */
  inFeatures: number;
  /** Linear: out_features; embedding: embedding_dim; norm: normalized size. */
  outFeatures: number;
  bias: boolean;
  /** Decoder layer index, null for top-level modules. */
  layer: number | null;
  /** The module's own parameters (weight + bias). */
  params: number;
  /** lm_head whose weight is the input embedding (tie_word_embeddings): a module, not extra parameters. */
  tied?: boolean;
}

/** A fused (non-module) parameter that only LoRA's `target_parameters` can reach: Llama 4 routed experts. */
export interface ParameterInstance {
  /** `model.layers.N.feed_forward.experts.gate_up_proj` */
  key: string;
  layer: number;
  /** Shape (E, d1, d2) as stored by Llama4TextExperts. */
  shape: [number, number, number];
}

function linearKey(a: TextArch, group: LinearGroup, name: string, layer: number): string {
  const llama4 = a.moe !== null;
  switch (group) {
    case 'attention':
      return `model.layers.${layer}.self_attn.${name}`;
    case 'cross_attention':
      return `model.layers.${layer}.cross_attn.${name}`;
    case 'mlp':
      return llama4 ? `model.layers.${layer}.feed_forward.${name}` : `model.layers.${layer}.mlp.${name}`;
    case 'router':
      return `model.layers.${layer}.feed_forward.router`;
    case 'shared_expert':
      return `model.layers.${layer}.feed_forward.shared_expert.${name}`;
    case 'lm_head':
      return 'lm_head';
  }
}

/** Every module instance of the text model that carries parameters. */
export function moduleInstances(a: TextArch): ModuleInstance[] {
  const h = a.hiddenSize;
  const out: ModuleInstance[] = [];
  const embeddingRows = a.vocabSize + a.extraEmbeddingRows;
  out.push({
    key: 'model.embed_tokens', name: 'embed_tokens', kind: 'embedding', group: 'embedding',
    inFeatures: embeddingRows, outFeatures: h, bias: false, layer: null, params: embeddingRows * h,
  });
  const cross = new Set(a.crossAttentionLayers);
  for (let i = 0; i < a.numLayers; i++) {
    for (const name of ['input_layernorm', 'post_attention_layernorm']) {
      out.push({ key: `model.layers.${i}.${name}`, name, kind: 'norm', group: 'norm', inFeatures: h, outFeatures: h, bias: false, layer: i, params: h });
    }
    if (cross.has(i)) {
      // MllamaTextCrossAttention: q_norm and k_norm are RMSNorm(head_dim).
      for (const name of ['q_norm', 'k_norm']) {
        out.push({ key: `model.layers.${i}.cross_attn.${name}`, name, kind: 'norm', group: 'norm', inFeatures: a.headDim, outFeatures: a.headDim, bias: false, layer: i, params: a.headDim });
      }
    }
  }
  out.push({ key: 'model.norm', name: 'norm', kind: 'norm', group: 'norm', inFeatures: h, outFeatures: h, bias: false, layer: null, params: h });
  for (const m of linearModules(a)) {
    const params = m.inFeatures * m.outFeatures + (m.bias ? m.outFeatures : 0);
    if (m.layers.length === 0) {
      out.push({ key: linearKey(a, m.group, m.name, 0), name: m.name, kind: 'linear', group: m.group, inFeatures: m.inFeatures, outFeatures: m.outFeatures, bias: m.bias, layer: null, params });
      continue;
    }
    for (const i of m.layers) {
      out.push({ key: linearKey(a, m.group, m.name, i), name: m.name, kind: 'linear', group: m.group, inFeatures: m.inFeatures, outFeatures: m.outFeatures, bias: m.bias, layer: i, params });
    }
  }
  if (a.tieWordEmbeddings) {
    // LlamaForCausalLM always builds `lm_head = nn.Linear(hidden, vocab, bias=False)`; tying makes its
    // weight the embedding's, so harness/params/text.ts leaves it out of the count. PEFT still sees the module.
    out.push({ key: 'lm_head', name: 'lm_head', kind: 'linear', group: 'lm_head', inFeatures: h, outFeatures: a.vocabSize, bias: false, layer: null, params: h * a.vocabSize, tied: true });
  }
  return out;
}

/** Llama 4 routed experts (Llama4TextExperts): gate_up_proj (E, h, 2I) and down_proj (E, I, h) per MoE layer. */
export function expertParameters(a: TextArch): ParameterInstance[] {
  if (!a.moe) return [];
  const { numExperts: e, expertIntermediateSize: inter } = a.moe;
  const h = a.hiddenSize;
  return a.moe.moeLayers.flatMap((i) => [
    { key: `model.layers.${i}.feed_forward.experts.gate_up_proj`, layer: i, shape: [e, h, 2 * inter] as [number, number, number] },
    { key: `model.layers.${i}.feed_forward.experts.down_proj`, layer: i, shape: [e, inter, h] as [number, number, number] },
  ]);
}

/** Decoder layers that have a self-attention module (`self_attn`): all but Mllama's cross-attention layers. */
export function selfAttentionLayers(a: TextArch): number[] {
  const cross = new Set(a.crossAttentionLayers);
  return Array.from({ length: a.numLayers }, (_, i) => i).filter((i) => !cross.has(i));
}
