// The modules of a ReferenceModel by HF module name (`model.layers.0.self_attn.q_proj`), as PEFT names
// them, so adapters can read and replace weights without knowing the ReferenceModel's field layout.
import { selfAttentionLayers } from './spec/modules.ts';
import type { ReferenceModel } from '../reference-weights.ts';
import type { TensorGetter } from '../vision/mllama-reference.ts';

export interface ModuleSlot {
  key: string;
  kind: 'linear' | 'embedding' | 'norm';
  /** Linear: out_features; embedding: rows; norm: size. */
  out: number;
  /** Linear: in_features; embedding: columns; norm: 1. */
  inp: number;
  get(): Float32Array;
  set(w: Float32Array): void;
  /**
   * mllama cross-attention decoder layer: the forward reads these weights by name (float32, no PEFT
   * hook), so an adapter can only replace them (merged); bias / input-scale branches cannot reach them.
   */
  cross?: boolean;
}

// Replaced cross-attention tensors of a cloned mllama model, by the getter the clone reads them through.
const crossOverrides = new WeakMap<TensorGetter, Map<string, Float32Array>>();

/**
 * A copy of `model` whose layer records are new objects, so that replacing a weight array on the copy
 * leaves the original untouched (the arrays themselves are shared until replaced).
 */
export function cloneModelShallow(model: ReferenceModel): ReferenceModel {
  const out: ReferenceModel = {
    ...model,
    layers: model.layers.map((l) => ({
      ...l,
      mlp: l.mlp ? { ...l.mlp } : null,
      moe: l.moe ? { ...l.moe, shared: { ...l.moe.shared } } : null,
    })),
  };
  if (model.crossAttention) {
    // The cross-attention layers are read by name: the copy reads through a getter of its own, whose
    // replaced tensors shadow the original's.
    const base = model.crossAttention.get;
    const replaced = new Map<string, Float32Array>();
    const get: TensorGetter = (name) => replaced.get(name) ?? base(name);
    crossOverrides.set(get, replaced);
    out.crossAttention = { ...model.crossAttention, get };
  }
  return out;
}

/** Every module of the reference model that holds a weight PEFT may adapt or save. */
export function referenceModules(model: ReferenceModel): Map<string, ModuleSlot> {
  const t = model.text;
  const h = t.hiddenSize;
  const slots = new Map<string, ModuleSlot>();
  const add = (key: string, kind: ModuleSlot['kind'], out: number, inp: number, get: () => Float32Array, set: (w: Float32Array) => void) =>
    slots.set(key, { key, kind, out, inp, get, set });
  // mllama's embedding has vocab_size + 8 rows (the <|image|> token and friends).
  add('model.embed_tokens', 'embedding', model.embed.length / h, h, () => model.embed, (w) => (model.embed = w));
  add('model.norm', 'norm', h, 1, () => model.norm, (w) => (model.norm = w));
  add('lm_head', 'linear', t.vocabSize, h, () => model.lmHead, (w) => (model.lmHead = w));
  const qDim = t.numHeads * t.headDim;
  const kvDim = t.numKvHeads * t.headDim;
  // mllama: `layers` holds the self-attention layers only; their HF index skips the cross-attention ones.
  const index = selfAttentionLayers(t);
  model.layers.forEach((l, i) => {
    const p = `model.layers.${index[i]!}`;
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
  const cross = model.crossAttention;
  if (cross) {
    // MllamaCrossAttentionDecoderLayer's Linear modules (HF `model.layers.N.cross_attn.X`, `mlp.X`).
    const replaced = crossOverrides.get(cross.get);
    const inter = t.intermediateSize;
    for (const layer of cross.layers) {
      const p = `model.layers.${layer}`;
      const shapes: [string, number, number][] = [
        ['cross_attn.q_proj', qDim, h], ['cross_attn.k_proj', kvDim, h], ['cross_attn.v_proj', kvDim, h], ['cross_attn.o_proj', h, qDim],
        ['mlp.gate_proj', inter, h], ['mlp.up_proj', inter, h], ['mlp.down_proj', h, inter],
      ];
      for (const [name, out, inp] of shapes) {
        const tensor = `language_model.${p}.${name}.weight`;
        slots.set(`${p}.${name}`, {
          key: `${p}.${name}`, kind: 'linear', out, inp, cross: true,
          get: () => cross.get(tensor),
          set: (w) => {
            if (!replaced) throw new Error(`referenceModules: ${p}.${name} set on a model that was not copied with cloneModelShallow`);
            replaced.set(tensor, w);
          },
        });
      }
    }
  }
  return slots;
}
