// Attention graphs for long-attention, GQA layout: Q (1, S, Hq*D), K/V (1, T, Hkv*D) where T is
// the total (past + new) length. Causal with the query at the END of the sequence, so prefill
// (S = T) and decode-with-cache (S = 1) share one definition. Optional `chunk` = LLaMA 4's
// chunked local attention: a query sees keys only inside its own chunk of `chunk` positions.
import { OnnxGraphBuilder } from '../runners/ort/onnx-builder.ts';

export interface AttnShape {
  qHeads: number;
  kvHeads: number;
  headDim: number;
}

/** Float64 reference for one batch, used on small lengths before timing. */
export function attentionReference(q: Float32Array, k: Float32Array, v: Float32Array, s: number, t: number, a: AttnShape, chunk = 0): Float64Array {
  const { qHeads, kvHeads, headDim: d } = a;
  const out = new Float64Array(s * qHeads * d);
  const scale = 1 / Math.sqrt(d);
  for (let h = 0; h < qHeads; h++) {
    const kh = Math.floor(h / (qHeads / kvHeads));
    for (let i = 0; i < s; i++) {
      const pos = t - s + i;
      const lo = chunk > 0 ? Math.floor(pos / chunk) * chunk : 0;
      const scores: number[] = [];
      for (let j = lo; j <= pos; j++) {
        let dot = 0;
        for (let e = 0; e < d; e++) dot += (q[(i * qHeads + h) * d + e] as number) * (k[(j * kvHeads + kh) * d + e] as number);
        scores.push(dot * scale);
      }
      const m = Math.max(...scores);
      const ex = scores.map((x) => Math.exp(x - m));
      const sum = ex.reduce((x, y) => x + y, 0);
      for (let e = 0; e < d; e++) {
        let acc = 0;
        for (let j = lo; j <= pos; j++) acc += ((ex[j - lo] as number) / sum) * (v[(j * kvHeads + kh) * d + e] as number);
        out[(i * qHeads + h) * d + e] = acc;
      }
    }
  }
  return out;
}

/** Additive mask (S, T): 0 where visible, -inf-ish where masked (causal, optional chunks). */
export function attentionMask(s: number, t: number, chunk = 0): Float32Array {
  const m = new Float32Array(s * t);
  for (let i = 0; i < s; i++) {
    const pos = t - s + i;
    const lo = chunk > 0 ? Math.floor(pos / chunk) * chunk : 0;
    for (let j = 0; j < t; j++) m[i * t + j] = j >= lo && j <= pos ? 0 : -1e30;
  }
  return m;
}

/**
 * MatMul-Softmax-MatMul with the KV heads repeated for GQA. Inputs Q, K, V, mask (S, T).
 * Materializes the (Hq, S, T) score matrix: the memory the fused kernels avoid.
 */
export function composedAttentionGraph(a: AttnShape): Uint8Array {
  const { qHeads, kvHeads, headDim: d } = a;
  const g = new OnnxGraphBuilder('attention_composed');
  g.input('Q', 'float32', [1, 'S', qHeads * d]);
  g.input('K', 'float32', [1, 'T', kvHeads * d]);
  g.input('V', 'float32', [1, 'T', kvHeads * d]);
  g.input('mask', 'float32', ['S', 'T']);
  const heads = (x: string, h: number) => g.op('Transpose', [g.op('Reshape', [x, g.ints(`${x}_shape`, [0, -1, h, d])])], { attrs: { perm: [0, 2, 1, 3] } });
  // (1, Hkv, T, D) -> (1, Hkv, G, T, D) -> (1, Hq, T, D): each KV head serves G query heads.
  const repeat = (x: string) => {
    const e = g.op('Unsqueeze', [x, g.ints(`${x}_ax`, [2])]);
    const t = g.op('Expand', [e, g.ints(`${x}_rep`, [1, 1, qHeads / kvHeads, 1, 1])]);
    return g.op('Reshape', [t, g.ints(`${x}_merge`, [1, qHeads, -1, d])]);
  };
  const q = heads('Q', qHeads);
  const k = repeat(heads('K', kvHeads));
  const v = repeat(heads('V', kvHeads));
  const kt = g.op('Transpose', [k], { attrs: { perm: [0, 1, 3, 2] } });
  g.initializer('scale', Float32Array.of(1 / Math.sqrt(d)), []);
  const scores = g.op('Add', [g.op('Mul', [g.op('MatMul', [q, kt]), 'scale']), 'mask']);
  const probs = g.op('Softmax', [scores], { attrs: { axis: -1 } });
  const o = g.op('Transpose', [g.op('MatMul', [probs, v])], { attrs: { perm: [0, 2, 1, 3] } });
  g.node('Reshape', [o, g.ints('out_shape', [1, -1, qHeads * d])], ['Y']);
  g.output('Y', 'float32', [1, 'S', qHeads * d]);
  return g.toBytes();
}

/**
 * com.microsoft GroupQueryAttention (ORT's LLaMA attention): new K/V for the S new positions plus
 * a past cache of P = T - S positions, in the (1, Hkv, P, D) BNSH cache layout; causal.
 * Inputs: Q, K, V (new), past_key, past_value, seqlens_k (T - 1), total_sequence_length (T).
 */
export function gqaGraph(a: AttnShape): Uint8Array {
  const { qHeads, kvHeads, headDim: d } = a;
  const g = new OnnxGraphBuilder('attention_gqa');
  g.input('Q', 'float32', [1, 'S', qHeads * d]);
  g.input('K', 'float32', [1, 'S', kvHeads * d]);
  g.input('V', 'float32', [1, 'S', kvHeads * d]);
  g.input('past_key', 'float32', [1, kvHeads, 'P', d]);
  g.input('past_value', 'float32', [1, kvHeads, 'P', d]);
  g.input('seqlens_k', 'int32', [1]);
  g.input('total_sequence_length', 'int32', []);
  g.node('GroupQueryAttention', ['Q', 'K', 'V', 'past_key', 'past_value', 'seqlens_k', 'total_sequence_length'], ['Y', 'present_key', 'present_value'], {
    domain: 'com.microsoft',
    attrs: { num_heads: qHeads, kv_num_heads: kvHeads },
  });
  g.output('Y', 'float32', [1, 'S', qHeads * d]);
  g.output('present_key', 'float32', [1, kvHeads, 'T', d]);
  g.output('present_value', 'float32', [1, kvHeads, 'T', d]);
  return g.toBytes();
}

/** ONNX opset-23 Attention (GQA via q_num_heads/kv_num_heads), with the same additive mask. */
export function onnxAttentionGraph(a: AttnShape): Uint8Array {
  const { qHeads, kvHeads, headDim: d } = a;
  const g = new OnnxGraphBuilder('attention_opset23', { '': 23 });
  g.input('Q', 'float32', [1, 'S', qHeads * d]);
  g.input('K', 'float32', [1, 'T', kvHeads * d]);
  g.input('V', 'float32', [1, 'T', kvHeads * d]);
  g.input('mask', 'float32', ['S', 'T']);
  g.node('Attention', ['Q', 'K', 'V', 'mask'], ['Y'], { attrs: { q_num_heads: qHeads, kv_num_heads: kvHeads } });
  g.output('Y', 'float32', [1, 'S', qHeads * d]);
  return g.toBytes();
}
