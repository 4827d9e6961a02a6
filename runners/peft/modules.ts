// The modules of a ReferenceModel by HF module name (`model.layers.0.self_attn.q_proj`), as PEFT names
// them, so adapters can read and replace weights without knowing the ReferenceModel's field layout.
import type { ReferenceModel } from '../reference-weights.ts';

export interface ModuleSlot {
  key: string;
  kind: 'linear' | 'embedding' | 'norm';
  /** Linear: out_features; embedding: rows; norm: size. */
  out: number;
  /** Linear: in_features; embedding: columns; norm: 1. */
  inp: number;
  get(): Float32Array;
  set(w: Float32Array): void;
}

/**
 * A copy of `model` whose layer records are new objects, so that replacing a weight array on the copy
 * leaves the original untouched (the arrays themselves are shared until replaced).
 */
export function cloneModelShallow(model: ReferenceModel): ReferenceModel {
  return {
    ...model,
    layers: model.layers.map((l) => ({
      ...l,
      mlp: l.mlp ? { ...l.mlp } : null,
      moe: l.moe ? { ...l.moe, shared: { ...l.moe.shared } } : null,
    })),
  };
}

/** Every module of the reference model that holds a weight PEFT may adapt or save. */
export function referenceModules(model: ReferenceModel): Map<string, ModuleSlot> {
  const t = model.text;
  const h = t.hiddenSize;
  const slots = new Map<string, ModuleSlot>();
  const add = (key: string, kind: ModuleSlot['kind'], out: number, inp: number, get: () => Float32Array, set: (w: Float32Array) => void) =>
    slots.set(key, { key, kind, out, inp, get, set });
  add('model.embed_tokens', 'embedding', t.vocabSize, h, () => model.embed, (w) => (model.embed = w));
  add('model.norm', 'norm', h, 1, () => model.norm, (w) => (model.norm = w));
  add('lm_head', 'linear', t.vocabSize, h, () => model.lmHead, (w) => (model.lmHead = w));
  const qDim = t.numHeads * t.headDim;
  const kvDim = t.numKvHeads * t.headDim;
  model.layers.forEach((l, i) => {
    const p = `model.layers.${i}`;
    add(`${p}.input_layernorm`, 'norm', h, 1, () => l.inputNorm, (w) => (l.inputNorm = w));
    add(`${p}.post_attention_layernorm`, 'norm', h, 1, () => l.postAttentionNorm, (w) => (l.postAttentionNorm = w));
    add(`${p}.self_attn.q_proj`, 'linear', qDim, h, () => l.q, (w) => (l.q = w));
    add(`${p}.self_attn.k_proj`, 'linear', kvDim, h, () => l.k, (w) => (l.k = w));
    add(`${p}.self_attn.v_proj`, 'linear', kvDim, h, () => l.v, (w) => (l.v = w));
    add(`${p}.self_attn.o_proj`, 'linear', h, qDim, () => l.o, (w) => (l.o = w));
    const mlpPrefix = model.arch.modelType === 'llama4' ? `${p}.feed_forward` : `${p}.mlp`;
    const dense = (prefix: string, m: NonNullable<typeof l.mlp>) => {
      add(`${prefix}.gate_proj`, 'linear', m.inter, h, () => m.gate, (w) => (m.gate = w));
      add(`${prefix}.up_proj`, 'linear', m.inter, h, () => m.up, (w) => (m.up = w));
      add(`${prefix}.down_proj`, 'linear', h, m.inter, () => m.down, (w) => (m.down = w));
    };
    if (l.mlp) dense(mlpPrefix, l.mlp);
    if (l.moe) {
      const moe = l.moe;
      add(`${mlpPrefix}.router`, 'linear', t.moe!.numExperts, h, () => moe.router, (w) => (moe.router = w));
      dense(`${mlpPrefix}.shared_expert`, moe.shared);
    }
  });
  return slots;
}
