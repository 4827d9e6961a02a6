// The decoder-layer blocks of the LLaMA ONNX graph (plain ONNX ops): self-attention with RoPE,
// GQA, KV cache, QK-norm and temperature tuning; the SwiGLU MLP; the Llama 4 MoE block. Each
// mirrors one function of the float64 reference (runners/reference.ts) and is tested against it.
import type { TextArch } from '../arch.ts';
import type { GraphOps } from './llama-ops.ts';

/** Names of the graph-wide values every layer reads (built once in llama-graph.ts). */
export interface SharedValues {
  /** [2] int64: (batch, seq) of input_ids. */
  batchSeq: string;
  /** Rotary tables, or null when no layer uses RoPE. rotate_half: [b,1,s,d]; interleaved: [b,1,s,d/2,1]. */
  cos: string | null;
  sin: string | null;
  /** Additive masks [b,1,1,s,T]: causal + padding, and the chunked one for Llama 4 RoPE layers. */
  globalMask: string;
  chunkedMask: string | null;
  /** Llama 4 temperature tuning per query position [b,1,s,1], or null. */
  temperature: string | null;
}

export interface AttentionWeights {
  q: string;
  k: string;
  v: string;
  o: string;
  qBias: string | null;
  kBias: string | null;
  vBias: string | null;
  oBias: string | null;
}

export interface AttentionLayer {
  useRope: boolean;
  /** Llama 4 rotates adjacent pairs (2i, 2i+1); LLaMA 1-3 rotate halves (i, i + d/2). */
  interleaved: boolean;
  qkNorm: boolean;
  chunked: boolean;
  pastKey: string;
  pastValue: string;
  presentKey: string;
  presentValue: string;
  /** PEFT hook (runners/ort/llama-peft.ts): LLaMA-Adapter prompt attention of this layer, if any. */
  prompt?: AttentionPromptHook | null;
}

// --- PEFT hook: LLaMA-Adapter V1/V2 adaption prompts (runners/ort/llama-peft.ts builds them). The
// reference (runners/reference.ts attention) takes the prompt attention from the final queries.
export interface AttentionPromptHook {
  /** Gated prompt attention as [N, heads*d] (the layout o_proj reads) from the final queries q [b, heads, s, d]. */
  heads(o: GraphOps, q: string, w: AttentionWeights): string;
  /** Official release: added to the heads before o_proj; HF PEFT: o_proj(prompt heads) added after. */
  beforeOProj: boolean;
}
// --- end PEFT hook

/** HF apply_rotary_pos_emb: x * cos + rotate_half(x) * sin, rotate_half(x) = (-x2, x1). */
function rotateHalf(o: GraphOps, x: string, cos: string, sin: string, d: number): string {
  const [x1, x2] = o.split(x, [d / 2, d / 2], -1) as [string, string];
  const rotated = o.op('Concat', [o.op('Neg', [x2]), x1], { axis: -1 });
  return o.op('Add', [o.op('Mul', [x, cos]), o.op('Mul', [rotated, sin])]);
}

/** modeling_llama4 apply_rotary_emb: adjacent pairs as complex numbers times e^{i angle}. */
function rotateInterleaved(o: GraphOps, x: string, cos: string, sin: string, d: number): string {
  const pairs = o.reshape(x, [0, 0, 0, d / 2, 2]);
  const [re, im] = o.split(pairs, [1, 1], -1) as [string, string];
  const outRe = o.op('Sub', [o.op('Mul', [re, cos]), o.op('Mul', [im, sin])]);
  const outIm = o.op('Add', [o.op('Mul', [re, sin]), o.op('Mul', [im, cos])]);
  return o.reshape(o.op('Concat', [outRe, outIm], { axis: -1 }), [0, 0, 0, d]);
}

/**
 * One self-attention block. `x` is the normed hidden state [N = b*s, h]; returns [N, h] and
 * defines the layer's present.N.key/value outputs ([b, kv_heads, past + s, d]).
 */
export function attentionBlock(o: GraphOps, t: TextArch, shared: SharedValues, w: AttentionWeights, layer: AttentionLayer, x: string): string {
  const { numHeads, numKvHeads, headDim: d } = t;
  const group = numHeads / numKvHeads;
  // [N, heads*d] -> [b, s, heads, d] -> [b, heads, s, d]
  const heads = (y: string, n: number) =>
    o.transpose(o.reshape(y, o.op('Concat', [shared.batchSeq, o.i64([n, d])], { axis: 0 })), [0, 2, 1, 3]);
  let q = heads(o.linear(x, w.q, w.qBias), numHeads);
  let k = heads(o.linear(x, w.k, w.kBias), numKvHeads);
  const v = heads(o.linear(x, w.v, w.vBias), numKvHeads);
  if (layer.useRope) {
    const rotate = layer.interleaved ? rotateInterleaved : rotateHalf;
    q = rotate(o, q, shared.cos!, shared.sin!, d);
    k = rotate(o, k, shared.cos!, shared.sin!, d);
  }
  // Llama 4 QK-norm comes after RoPE, on RoPE layers only (Llama4TextAttention).
  if (layer.qkNorm) {
    q = o.rmsNorm(q, null, t.rmsNormEps);
    k = o.rmsNorm(k, null, t.rmsNormEps);
  }
  if (!layer.useRope && shared.temperature) q = o.op('Mul', [q, shared.temperature]);
  const keys = appendToCache(o, layer.pastKey, k, layer.presentKey);
  const values = appendToCache(o, layer.pastValue, v, layer.presentValue);
  // GQA without copying K/V per head: query head h reads kv head floor(h / group) (HF repeat_kv),
  // so view q as [b, kv, group, s, d] and let MatMul broadcast K/V [b, kv, 1, T, d] over the group.
  const q5 = o.reshape(q, [0, numKvHeads, group, -1, d]);
  const k5 = o.unsqueeze(keys, [2]);
  const v5 = o.unsqueeze(values, [2]);
  const scores = o.op('Mul', [o.op('MatMul', [q5, o.transpose(k5, [0, 1, 2, 4, 3])]), o.scalar(1 / Math.sqrt(d))]);
  const mask = layer.chunked ? shared.chunkedMask! : shared.globalMask;
  // Mask and softmax in float32, as HF's eager attention does for fp16 (softmax(dtype=float32)):
  // the fp32 mask's -1e9 is -inf in fp16, and a fully masked padding row would turn into NaN.
  const probs = o.fromF32(o.op('Softmax', [o.op('Add', [o.toF32(scores), mask])], { axis: -1 }));
  const context = o.op('MatMul', [probs, v5]); // [b, kv, group, s, d]
  let merged = o.reshape(o.transpose(o.reshape(context, [0, numHeads, -1, d]), [0, 2, 1, 3]), [-1, numHeads * d]);
  // PEFT hook: adaption prompt attention joins before or after o_proj.
  const prompt = layer.prompt ? layer.prompt.heads(o, q, w) : null;
  if (prompt !== null && layer.prompt!.beforeOProj) merged = o.op('Add', [merged, prompt]);
  const out = o.linear(merged, w.o, w.oBias);
  return prompt !== null && !layer.prompt!.beforeOProj ? o.op('Add', [out, o.linear(prompt, w.o, w.oBias)]) : out;
}

/**
 * present = concat(past, new) along the sequence axis, written to the graph output `present`. The
 * cache inputs and outputs are float32 in every graph (the KvCache of llama-model.ts); an fp16 graph
 * casts them at its edge and attends over the fp16 concatenation it returns.
 */
export function appendToCache(o: GraphOps, past: string, x: string, present: string): string {
  if (o.floatType === 'float32') return o.g.node('Concat', [past, x], [present], { attrs: { axis: 2 } })[0]!;
  const all = o.op('Concat', [o.fromF32(past), x], { axis: 2 });
  o.g.node('Cast', [all], [present], { attrs: { to: 1 } });
  return all;
}

export interface DenseMlpNames {
  gate: string;
  up: string;
  down: string;
  gateBias: string | null;
  upBias: string | null;
  downBias: string | null;
}

/** SwiGLU: down(silu(gate x) * up x), on [N, h]. */
export function denseMlpBlock(o: GraphOps, w: DenseMlpNames, x: string): string {
  const gate = o.silu(o.linear(x, w.gate, w.gateBias));
  return o.linear(o.op('Mul', [gate, o.linear(x, w.up, w.upBias)]), w.down, w.downBias);
}

export interface MoeNames {
  router: string;
  /** [E, H, 2I] */
  gateUp: string;
  /** [E, I, H] */
  down: string;
  shared: DenseMlpNames;
}

/**
 * Llama4TextMoe on [N, h], computed densely as HF does: router scores are sigmoid(logit) for the
 * top-k experts and sigmoid(-inf) = 0 for the rest; every expert sees x * its score (so unchosen
 * experts contribute exactly 0), outputs are summed and the shared expert is added.
 */
export function moeBlock(o: GraphOps, t: TextArch, w: MoeNames, x: string): string {
  const moe = t.moe!;
  const inter = moe.expertIntermediateSize;
  const logits = o.linear(x, w.router, null); // [N, E]
  const [topValues, topIndices] = o.g.node('TopK', [logits, o.i64([moe.topK])], 2, { attrs: { axis: -1, largest: 1, sorted: 1 } }) as [string, string];
  const minusInf = o.op('Expand', [o.scalar(-Infinity), o.op('Shape', [logits])]);
  const scores = o.op('Sigmoid', [o.op('ScatterElements', [minusInf, topIndices, topValues], { axis: 1 })]);
  const routedIn = o.op('Mul', [o.unsqueeze(x, [0]), o.unsqueeze(o.transpose(scores, [1, 0]), [2])]); // [E, N, h]
  const [gate, up] = o.split(o.op('MatMul', [routedIn, w.gateUp]), [inter, inter], -1) as [string, string];
  const expertOut = o.op('MatMul', [o.op('Mul', [o.silu(gate), up]), w.down]); // [E, N, h]
  const routed = o.op('ReduceSum', [expertOut, o.i64([0])], { keepdims: 0 });
  return o.op('Add', [routed, denseMlpBlock(o, w.shared, x)]);
}
