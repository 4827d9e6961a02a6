// Exact parameter count of the HF `*ForCausalLM` text model of a LLaMA-family checkpoint,
// written module by module from transformers' modeling files (modeling_llama.py,
// modeling_mllama.py `MllamaForCausalLM`, modeling_llama4.py `Llama4ForCausalLM`). Counting is
// the product here, so it is done by hand rather than by instantiating a framework model.

import type { TextArch } from '../../runners/arch.ts';
import { linearModules, linearParams } from '../../runners/arch-modules.ts';
import type { ParamCount } from './types.ts';


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
