// Exact parameter count of the HF `*ForCausalLM` text model of a LLaMA-family checkpoint,
// written module by module from transformers' modeling files (modeling_llama.py,
// modeling_mllama.py `MllamaForCausalLM`, modeling_llama4.py `Llama4ForCausalLM`). Counting is
// the product here, so it is done by hand rather than by instantiating a framework model.

import type { TextArch } from '../../runners/arch.ts';
import type { ParamCount } from './types.ts';

/** Where a linear layer sits; PEFT targeting and component totals group by it. */
export type LinearGroup = 'attention' | 'cross_attention' | 'mlp' | 'shared_expert' | 'router' | 'lm_head';

/** One `nn.Linear` of the text model, repeated over `layers` (empty for lm_head, which is one). */
export interface LinearModule {
  /** The module's own name, as PEFT `target_modules` matches it: `q_proj`, `down_proj`, `lm_head`... */
  name: string;
  group: LinearGroup;
  inFeatures: number;
  outFeatures: number;
  bias: boolean;
  /** Decoder layer indices holding this module; `[]` means the single top-level module. */
  layers: number[];
}

/** Number of instances of a module (one for top-level modules). */
export function instances(m: LinearModule): number {
  return m.layers.length === 0 ? 1 : m.layers.length;
}

export function linearParams(m: LinearModule): number {
  return instances(m) * (m.inFeatures * m.outFeatures + (m.bias ? m.outFeatures : 0));
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/**
 * Every `nn.Linear` of the text model. Llama 4 routed experts are not here: HF stores them as
 * fused 3-D parameters (`experts.gate_up_proj`, `experts.down_proj`), which PEFT's
 * `target_modules` cannot match; they are counted in `countTextParams`.
 */
export function linearModules(a: TextArch): LinearModule[] {
  const h = a.hiddenSize;
  const q = a.numHeads * a.headDim;
  const kv = a.numKvHeads * a.headDim;
  const cross = new Set(a.crossAttentionLayers);
  const moeLayers = new Set(a.moe?.moeLayers ?? []);
  const all = range(a.numLayers);
  const selfAttn = all.filter((i) => !cross.has(i));
  const crossAttn = all.filter((i) => cross.has(i));
  const dense = all.filter((i) => !moeLayers.has(i));
  const moe = all.filter((i) => moeLayers.has(i));
  const out: LinearModule[] = [];
  const attention = (group: LinearGroup, layers: number[]) => {
    if (layers.length === 0) return;
    const bias = a.attentionBias;
    out.push({ name: 'q_proj', group, inFeatures: h, outFeatures: q, bias, layers });
    out.push({ name: 'k_proj', group, inFeatures: h, outFeatures: kv, bias, layers });
    out.push({ name: 'v_proj', group, inFeatures: h, outFeatures: kv, bias, layers });
    out.push({ name: 'o_proj', group, inFeatures: q, outFeatures: h, bias, layers });
  };
  const mlp = (group: LinearGroup, layers: number[], inter: number, bias: boolean) => {
    if (layers.length === 0) return;
    out.push({ name: 'gate_proj', group, inFeatures: h, outFeatures: inter, bias, layers });
    out.push({ name: 'up_proj', group, inFeatures: h, outFeatures: inter, bias, layers });
    out.push({ name: 'down_proj', group, inFeatures: inter, outFeatures: h, bias, layers });
  };
  attention('attention', selfAttn);
  attention('cross_attention', crossAttn);
  mlp('mlp', dense, a.intermediateSize, a.mlpBias);
  if (a.moe) {
    // Llama4TextMoe: a bias-free router Linear(h, E) and a shared expert MLP of expert width.
    if (moe.length > 0) {
      out.push({ name: 'router', group: 'router', inFeatures: h, outFeatures: a.moe.numExperts, bias: false, layers: moe });
    }
    mlp('shared_expert', moe, a.moe.expertIntermediateSize, false);
  }
  if (!a.tieWordEmbeddings) {
    out.push({ name: 'lm_head', group: 'lm_head', inFeatures: h, outFeatures: a.vocabSize, bias: false, layers: [] });
  }
  return out;
}

/** Exact parameter count of the text model (see file header). */
export function countTextParams(a: TextArch): ParamCount {
  const h = a.hiddenSize;
  const components: Record<string, number> = {};
  const add = (name: string, n: number) => {
    if (n !== 0) components[name] = (components[name] ?? 0) + n;
  };

  const embedding = (a.vocabSize + a.extraEmbeddingRows) * h;
  add('embed_tokens', embedding);
  for (const m of linearModules(a)) add(m.group, linearParams(m));

  // RMSNorm weights: input_layernorm + post_attention_layernorm per layer, and the final norm.
  add('norms', a.numLayers * 2 * h + h);
  // Mllama cross-attention layers: q_norm and k_norm (RMSNorm over head_dim) and two scalar tanh
  // gates (`cross_attn_attn_gate`, `cross_attn_mlp_gate`).
  add('cross_attention', a.crossAttentionLayers.length * (2 * a.headDim + 2));

  let expertParams = 0;
  if (a.moe) {
    // Llama4TextExperts: gate_up_proj (E, h, 2I) and down_proj (E, I, h), no biases.
    const perExpert = 3 * h * a.moe.expertIntermediateSize;
    expertParams = a.moe.moeLayers.length * a.moe.numExperts * perExpert;
    add('experts', expertParams);
  }
  const total = Object.values(components).reduce((s, n) => s + n, 0);
  // Active per token: only top-k of the routed experts run (the shared expert always runs).
  const activeExperts = a.moe ? a.moe.moeLayers.length * a.moe.topK * 3 * h * a.moe.expertIntermediateSize : 0;
  const active = total - expertParams + activeExperts;
  return { total, active, embedding, vision: null, components };
}
