// The MoE graphs compute LLaMA 4's layer, shared(x) + expert_e(x * sigmoid(logit_e)), as the
// float64 reference does (16 experts, 4 tokens; the bench re-checks at run time).
import { describe, expect, it } from 'vitest';
import { denseGraph, gatherGraph, HIDDEN, moeContribGraph, moeReference, moeWeights } from '../../kernels/moe-dispatch.ts';
import { qmoeGraph, qmoeWeights, quantizeExpertsInt4 } from '../../kernels/moe-qmoe.ts';
import { seededFloats } from '../../kernels/measure.ts';
import { runOnce } from '../../runners/ort/session.ts';

const w = moeWeights(16);
const x = seededFloats(4 * HIDDEN, 7);
const want = moeReference(x, 4, w);

describe('moe-dispatch graphs', () => {
  it('the reference routes tokens to more than one expert (the check exercises routing)', () => {
    expect(new Set(want.experts).size).toBeGreaterThan(1);
  });

  for (const [name, graph] of [['dense all-experts', denseGraph], ['gather', gatherGraph], ['com.microsoft MoE', moeContribGraph]] as const) {
    it(`${name} matches the float64 reference`, async () => {
      const y = (await runOnce(graph(w), { X: { data: x, dims: [4, HIDDEN] } })).Y?.data as Float32Array;
      // float32 sums over 512 and 1024 terms of O(1) magnitude: errors of order 1e-6.
      for (let i = 0; i < want.y.length; i++) expect(Math.abs((y[i] as number) - (want.y[i] as number))).toBeLessThan(1e-4);
    });
  }

  it('com.microsoft QMoE (int4 experts, block 64) matches the float64 reference over the dequantized experts', async () => {
    // 4 experts keeps the JS quantizer and reference fast; the layout is the same at 16.
    const w4 = moeWeights(4);
    const float = moeReference(x, 4, w4);
    const q = qmoeWeights(w4);
    const ref = moeReference(x, 4, q.reference);
    // Same router, so the same experts; int4 rounding moves outputs by far more than the tolerance,
    // so matching the dequantized reference (not the float one) pins ORT's layout and zero point.
    expect(new Set(ref.experts).size).toBeGreaterThan(1);
    expect(ref.experts).toEqual(float.experts);
    const y = (await runOnce(qmoeGraph(w4, q), { X: { data: x, dims: [4, HIDDEN] } })).Y?.data as Float32Array;
    let offFloat = 0;
    for (let i = 0; i < ref.y.length; i++) {
      expect(Math.abs((y[i] as number) - (ref.y[i] as number))).toBeLessThan(1e-4);
      offFloat = Math.max(offFloat, Math.abs((y[i] as number) - (float.y[i] as number)));
    }
    expect(offFloat).toBeGreaterThan(1e-3);
  });
});

describe('int4 expert quantizer (QMoE layout)', () => {
  it('packs (out, in) with the low nibble first and dequantizes as (q - 8) * max|w| / 7', () => {
    // ContribOperators.md, QMoE: weights (E, out, in / 2), zero point 2^(bits-1) = 8 when absent,
    // w = (q - 8) * scale; low nibble = even element (MatMulNBits packing). One expert, in = 64,
    // out = 1, (E, in, out) input: w[0] = 7 (max) -> q 15, w[1] = -7 -> q 1, w[2] = 0.4 -> q 8
    // (0.4 rounds to 0), w[3] = 2.6 -> q 11 (rounds to 3).
    const src = new Float32Array(64);
    src.set([7, -7, 0.4, 2.6]);
    const e = quantizeExpertsInt4(src, 1, 64, 1);
    expect(Array.from(e.scales)).toEqual([1]);
    expect(e.packed[0]).toBe(0x1f);
    expect(e.packed[1]).toBe(0xb8);
    expect(Array.from(e.dequantized.subarray(0, 4))).toEqual([7, -7, 0, 3]);
  });

  it('rejects an input size that is not a multiple of the block', () => {
    expect(() => quantizeExpertsInt4(new Float32Array(96), 1, 96, 1)).toThrow(/input size 96 is not a multiple of block 64/);
  });
});
