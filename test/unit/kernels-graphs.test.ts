// The attention, MoE and NF4 graph builders agree with their float64 references on tiny shapes
// (the bench checks the LLaMA shapes at run time; these keep the builders honest in CI).
import { describe, expect, it } from 'vitest';
import { attentionMask, attentionReference, composedAttentionGraph, gqaGraph, onnxAttentionGraph } from '../../kernels/attention-graphs.ts';
import { gatherDequantGraph, int4Dequantize, matMulNBitsGraph } from '../../kernels/nf4-graphs.ts';
import { seededFloats } from '../../kernels/measure.ts';
import { nf4Dequantize, nf4Quantize } from '../../runners/quant/nf4.ts';
import { runOnce } from '../../runners/ort/session.ts';

const A = { qHeads: 4, kvHeads: 2, headDim: 8 };

describe('attention graphs', () => {
  it('the chunked mask lets a query see only its own chunk, causally', () => {
    // T = 6, chunk 4: position 5 sees 4..5; position 3 sees 0..3.
    const m = attentionMask(6, 6, 4);
    expect(Array.from(m.subarray(5 * 6, 6 * 6)).map((v) => v === 0)).toEqual([false, false, false, false, true, true]);
    expect(Array.from(m.subarray(3 * 6, 4 * 6)).map((v) => v === 0)).toEqual([true, true, true, true, false, false]);
  });

  for (const [name, graph] of [['composed', composedAttentionGraph], ['opset-23 Attention', onnxAttentionGraph]] as const) {
    for (const [s, t, chunk] of [[5, 5, 0], [1, 7, 0], [6, 6, 4]] as const) {
      it(`${name} matches the reference for S=${s}, T=${t}${chunk ? `, chunk ${chunk}` : ''}`, async () => {
        const q = seededFloats(s * A.qHeads * A.headDim, 1);
        const k = seededFloats(t * A.kvHeads * A.headDim, 2);
        const v = seededFloats(t * A.kvHeads * A.headDim, 3);
        const out = await runOnce(graph(A), {
          Q: { data: q, dims: [1, s, A.qHeads * A.headDim] }, K: { data: k, dims: [1, t, A.kvHeads * A.headDim] },
          V: { data: v, dims: [1, t, A.kvHeads * A.headDim] }, mask: { data: attentionMask(s, t, chunk), dims: [s, t] },
        });
        const want = attentionReference(q, k, v, s, t, A, chunk);
        const got = out.Y?.data as Float32Array;
        for (let i = 0; i < want.length; i++) expect(Math.abs((got[i] as number) - (want[i] as number))).toBeLessThan(1e-5);
      });
    }
  }
});

describe('GroupQueryAttention graph', () => {
  for (const [s, t] of [[5, 5], [1, 6], [2, 6]] as const) {
    it(`matches the reference with ${t - s} cached and ${s} new positions`, async () => {
      const q = seededFloats(s * A.qHeads * A.headDim, 1);
      const k = seededFloats(t * A.kvHeads * A.headDim, 2);
      const v = seededFloats(t * A.kvHeads * A.headDim, 3);
      const past = t - s;
      const w = A.kvHeads * A.headDim;
      // (T, Hkv, D) rows -> BNSH cache (1, Hkv, P, D) for the first P positions.
      const cache = (x: Float32Array) => {
        const out = new Float32Array(past * w);
        for (let p = 0; p < past; p++) for (let h = 0; h < A.kvHeads; h++) out.set(x.subarray((p * A.kvHeads + h) * A.headDim, (p * A.kvHeads + h + 1) * A.headDim), (h * past + p) * A.headDim);
        return out;
      };
      const out = await runOnce(gqaGraph(A), {
        Q: { data: q, dims: [1, s, A.qHeads * A.headDim] },
        K: { data: k.slice(past * w), dims: [1, s, w] }, V: { data: v.slice(past * w), dims: [1, s, w] },
        past_key: { data: cache(k), dims: [1, A.kvHeads, past, A.headDim] }, past_value: { data: cache(v), dims: [1, A.kvHeads, past, A.headDim] },
        seqlens_k: { data: Int32Array.of(t - 1), dims: [1] }, total_sequence_length: { data: Int32Array.of(t), dims: [] },
      });
      const want = attentionReference(q, k, v, s, t, A);
      const got = out.Y?.data as Float32Array;
      for (let i = 0; i < want.length; i++) expect(Math.abs((got[i] as number) - (want[i] as number))).toBeLessThan(1e-5);
    });
  }
});

describe('NF4 and int4 matmul graphs', () => {
  const n = 8;
  const k = 64;
  it('the Gather dequantize graph reproduces the bitsandbytes dequantization exactly', async () => {
    const q = nf4Quantize(seededFloats(n * k, 4));
    const eye = new Float32Array(k * k);
    for (let i = 0; i < k; i++) eye[i * k + i] = 1;
    // A = identity makes Y = W^T, so Y is the dequantized weight itself.
    const out = await runOnce(gatherDequantGraph({ n, k, packed: q.packed, absmax: q.absmax, blockSize: 64 }), {
      A: { data: eye, dims: [k, k] }, packed: { data: q.packed, dims: [(n * k) / 2, 1] }, absmax: { data: q.absmax, dims: [q.absmax.length, 1] },
    });
    const y = out.Y?.data as Float32Array;
    const w = nf4Dequantize(q);
    for (let j = 0; j < n; j++) for (let i = 0; i < k; i++) expect(y[i * n + j]).toBe(w[j * k + i]);
  });

  it('MatMulNBits int4 (low nibble first, zero point 8) matches int4Dequantize', async () => {
    const packed = Uint8Array.from({ length: (n * k) / 2 }, (_, i) => (i * 37) & 0xff);
    const w = { n, k, packed, scales: Float32Array.from({ length: n }, (_, i) => 0.01 * (i + 1)), blockSize: 64 };
    const eye = new Float32Array(k * k);
    for (let i = 0; i < k; i++) eye[i * k + i] = 1;
    const y = (await runOnce(matMulNBitsGraph(w), { A: { data: eye, dims: [k, k] } })).Y?.data as Float32Array;
    const ref = int4Dequantize(w);
    for (let j = 0; j < n; j++) for (let i = 0; i < k; i++) expect(y[i * n + j]).toBeCloseTo(ref[j * k + i] as number, 6);
  });
});
