// The fused-op alternative of the LLaMA graph's attention and norms: ORT contrib ops that run on
// CPU (com.microsoft GroupQueryAttention, RotaryEmbedding, SkipSimplifiedLayerNormalization and
// ORT's SimplifiedLayerNormalization). Tested equal to the plain-op path (llama-blocks.ts), which
// stays the default. Padding on either side is exact: GroupQueryAttention is told every row is full
// (seqlens_k = total - 1) and the padded keys are masked through its attention_bias input (below).
// Chunked attention (Llama 4 RoPE layers) stays on the plain path: GQA has no chunked mask. So does
// attention in fp16 graphs, whose KV cache is float32 at the graph edge (llama-blocks.ts appendToCache):
// GQA may write present into its past buffer, and ORT's planner then reuses the Cast of past_key for
// present_key and fails on the length mismatch ("Shape mismatch attempting to re-use buffer").
import type { TextArch } from '../arch.ts';
import type { AttentionWeights } from './llama-blocks.ts';
import type { GraphOps } from './llama-ops.ts';

// cos/sin caches above this size fall back to the plain RoPE path (Llama 4 Scout's 10M positions).
const MAX_ROTARY_CACHE_BYTES = 64 * 2 ** 20;

/** Whether the fused path can rotate with precomputed tables (not for position-dependent `dynamic`). */
export function fusedRotarySupported(t: TextArch): boolean {
  return t.ropeScaling?.ropeType !== 'dynamic' && t.maxPositionEmbeddings * t.headDim * 4 <= MAX_ROTARY_CACHE_BYTES;
}

/** cos/sin caches [max_pos, d/2] for RotaryEmbedding, computed in float64 from inv_freq. */
export function rotaryCaches(o: GraphOps, t: TextArch, invFreq: Float64Array): { cosCache: string; sinCache: string } {
  const half = t.headDim / 2;
  const cos = new Float32Array(t.maxPositionEmbeddings * half);
  const sin = new Float32Array(t.maxPositionEmbeddings * half);
  for (let p = 0; p < t.maxPositionEmbeddings; p++) {
    for (let i = 0; i < half; i++) {
      cos[p * half + i] = Math.cos(p * invFreq[i]!);
      sin[p * half + i] = Math.sin(p * invFreq[i]!);
    }
  }
  return {
    cosCache: o.g.initializer('rotary_cos_cache', cos, [t.maxPositionEmbeddings, half]),
    sinCache: o.g.initializer('rotary_sin_cache', sin, [t.maxPositionEmbeddings, half]),
  };
}

export interface FusedShared {
  /** [2] int64 (batch, seq). */
  batchSeq: string;
  cosCache: string;
  sinCache: string;
  /** int32 [b]: total - 1 for every row (GroupQueryAttention's seqlens_k; see gqaInputs). */
  seqlensK: string;
  /** int32 scalar: past + new (GroupQueryAttention's total_sequence_length). */
  totalLength: string;
  /** float [b, 1, s, T]: 0 where a query may attend a key, a large negative number elsewhere. */
  attentionBias: string;
  /** Llama 4 temperature tuning per query [b, s, 1], or null. */
  temperature: string | null;
}

/**
 * seqlens_k, total_sequence_length and attention_bias for GroupQueryAttention. The CPU kernel reads
 * seqlens_k as "row b holds keys 0..seqlens_k[b]" and takes its query slots as the last S of those
 * (contrib_ops/cpu/bert/gqa_attention_base.h: past_seqlen = seqlens_k + 1 - S, causal length
 * past_seqlen + i + 1), i.e. right padding only; onnxruntime-genai feeds mask sums there. Here every
 * row claims the full width T, so GQA's causality is slot causality (which equals position causality
 * for left and right padding alike), and the padding keys are removed by `additiveMask` [b,1,1,s,T]
 * (the plain path's causal + padding mask, llama-graph.ts attentionMasks) passed as attention_bias.
 */
export function gqaInputs(o: GraphOps, attentionMask: string, additiveMask: string): { seqlensK: string; totalLength: string; attentionBias: string } {
  const shape = o.op('Shape', [attentionMask]);
  const total = o.op('Gather', [shape, o.i64([1], true)], { axis: 0 });
  const rows = o.op('Gather', [shape, o.i64([0])], { axis: 0 }); // [1] = (b)
  return {
    seqlensK: o.op('Cast', [o.op('Expand', [o.op('Sub', [total, o.i64([1], true)]), rows])], { to: 6 }),
    totalLength: o.op('Cast', [total], { to: 6 }),
    attentionBias: o.op('Squeeze', [additiveMask, o.i64([1])]),
  };
}

/**
 * Self-attention with RotaryEmbedding + GroupQueryAttention on [b, s, heads*d] tensors. RoPE runs as
 * its own op (not GQA's do_rotary) so Llama 4's QK-norm can sit between rotation and attention.
 */
export function fusedAttentionBlock(
  o: GraphOps,
  t: TextArch,
  shared: FusedShared,
  w: AttentionWeights,
  layer: { useRope: boolean; interleaved: boolean; qkNorm: boolean; pastKey: string; pastValue: string; presentKey: string; presentValue: string },
  x: string,
): string {
  const { numHeads, numKvHeads, headDim: d } = t;
  const toBsh = (y: string, n: number) => o.reshape(y, o.op('Concat', [shared.batchSeq, o.i64([n * d])], { axis: 0 }));
  let q = toBsh(o.linear(x, w.q, w.qBias), numHeads);
  let k = toBsh(o.linear(x, w.k, w.kBias), numKvHeads);
  const v = toBsh(o.linear(x, w.v, w.vBias), numKvHeads);
  if (layer.useRope) {
    const rotate = (y: string, heads: number) =>
      o.g.node('RotaryEmbedding', [y, 'position_ids', shared.cosCache, shared.sinCache], 1, {
        domain: 'com.microsoft',
        attrs: { interleaved: layer.interleaved ? 1 : 0, num_heads: heads },
      })[0]!;
    q = rotate(q, numHeads);
    k = rotate(k, numKvHeads);
  }
  if (layer.qkNorm) {
    const perHead = (y: string, heads: number) => o.reshape(o.rmsNorm(o.reshape(y, [0, 0, heads, d]), null, t.rmsNormEps), [0, 0, heads * d]);
    q = perHead(q, numHeads);
    k = perHead(k, numKvHeads);
  }
  if (!layer.useRope && shared.temperature) q = o.op('Mul', [q, shared.temperature]);
  const [attn] = o.g.node(
    'GroupQueryAttention',
    [q, k, v, layer.pastKey, layer.pastValue, shared.seqlensK, shared.totalLength, '', '', '', shared.attentionBias],
    [`gqa_out_${layer.presentKey}`, layer.presentKey, layer.presentValue],
    { domain: 'com.microsoft', attrs: { num_heads: numHeads, kv_num_heads: numKvHeads, scale: { float: 1 / Math.sqrt(d) } } },
  ) as [string];
  return o.linear(o.reshape(attn, [-1, numHeads * d]), w.o, w.oBias);
}

/** ORT's SimplifiedLayerNormalization: RMSNorm in one op. */
export function fusedRmsNorm(o: GraphOps, x: string, weight: string, eps: number): string {
  return o.op('SimplifiedLayerNormalization', [x, weight], { axis: -1, epsilon: { float: eps }, stash_type: 1 });
}

/** SkipSimplifiedLayerNormalization: (RMSNorm(x + skip), x + skip), the residual add fused in. */
export function fusedSkipRmsNorm(o: GraphOps, x: string, skip: string, weight: string, eps: number): { normed: string; sum: string } {
  const outs = o.g.node('SkipSimplifiedLayerNormalization', [x, skip, weight], 4, { domain: 'com.microsoft', attrs: { epsilon: { float: eps } } });
  return { normed: outs[0]!, sum: outs[3]! };
}
