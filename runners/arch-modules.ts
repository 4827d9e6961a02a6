// The `nn.Linear` modules of the HF text model of a LLaMA-family checkpoint, written from
// transformers' modeling files (modeling_llama.py, modeling_mllama.py, modeling_llama4.py): what
// PEFT targets (runners/peft, harness/peft) and what the parameter count sums (harness/params).

import type { TextArch } from './arch.ts';

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
