// The three MoE graphs compute LLaMA 4's layer, shared(x) + expert_e(x * sigmoid(logit_e)),
// as the float64 reference does (16 experts, 4 tokens; the bench re-checks at run time).
import { describe, expect, it } from 'vitest';
import { denseGraph, gatherGraph, HIDDEN, moeContribGraph, moeReference, moeWeights } from '../../kernels/moe-dispatch.ts';
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
});
