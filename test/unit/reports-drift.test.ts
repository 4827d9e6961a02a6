// Drift maths against hand-computed values, a published KL example, numpy's documented
// percentile, and an independent per-position implementation written here from the definitions
// llama.cpp's tools/perplexity/perplexity.cpp (kl_divergence()) uses.
import { describe, expect, it } from 'vitest';
import { driftStats, klDivergence, percentile } from '../../reports/drift.ts';
import { InputError } from '../../results/errors.ts';

const ln = Math.log;
const logs = (ps: number[]) => ps.map((p) => ln(p));

describe('KL divergence', () => {
  it('matches the Wikipedia worked example: Binomial(2, 0.4) against uniform on {0,1,2}', () => {
    // en.wikipedia.org/wiki/Kullback–Leibler_divergence, "Basic example": P = (9/25, 12/25, 4/25),
    // Q = (1/3, 1/3, 1/3); D(P||Q) = 0.0852996 nats, D(Q||P) = 0.097455 nats.
    const P = logs([9 / 25, 12 / 25, 4 / 25]);
    const Q = logs([1 / 3, 1 / 3, 1 / 3]);
    expect(klDivergence(P, Q)).toBeCloseTo(0.0852996, 7);
    expect(klDivergence(Q, P)).toBeCloseTo(0.097455, 6);
  });

  it('a fixed pair by hand: KL((1/2,1/4,1/4) || (1/4,1/2,1/4)) = 1/2 ln 2 - 1/4 ln 2 = ln(2)/4', () => {
    expect(klDivergence(logs([0.5, 0.25, 0.25]), logs([0.25, 0.5, 0.25]))).toBeCloseTo(ln(2) / 4, 15);
  });

  it('terms where the base gives probability 0 contribute nothing', () => {
    // (1, 0) against (1/2, 1/2): 1 * ln(1 / (1/2)) = ln 2.
    expect(klDivergence([0, -Infinity], logs([0.5, 0.5]))).toBeCloseTo(ln(2), 15);
  });
});

describe('percentile', () => {
  it("is numpy's default (linear) method", () => {
    // numpy.percentile docs: a = [[10, 7, 4], [3, 2, 1]]; np.percentile(a, 50) -> 3.5.
    expect(percentile([1, 2, 3, 4, 7, 10], 0.5)).toBe(3.5);
    // Over 0..100 the p-th percentile is p itself.
    const r = Array.from({ length: 101 }, (_, i) => i);
    expect(percentile(r, 0.99)).toBeCloseTo(99, 12);
    expect(percentile(r, 0.999)).toBeCloseTo(99.9, 12);
    expect(percentile([5], 0.99)).toBe(5);
  });
});

describe('driftStats', () => {
  it('a model against itself: KL exactly 0, full top-1 agreement, PPL ratio exactly 1', () => {
    const rows = [logs([0.7, 0.2, 0.1]), logs([0.1, 0.1, 0.8]), [2.5, -1, 0.25]];
    const d = driftStats(rows, rows, [0, 2, 1]);
    expect(d.kl_per_position).toEqual([0, 0, 0]);
    expect(d.kl_mean.value).toBe(0);
    expect(d.kl_max).toBe(0);
    expect(d.top1_agreement.value).toBe(1);
    expect(d.ln_ppl_ratio.value).toBe(0);
    expect(d.ppl_ratio.value).toBe(1);
    expect(d.delta_p_rms).toBe(0);
  });

  it('rows may be logits: a constant shift of every logit changes nothing', () => {
    const base = logs([0.5, 0.25, 0.25]);
    const shifted = base.map((x) => x + 3.7);
    const d = driftStats([shifted], [logs([0.25, 0.5, 0.25])], [0]);
    expect(d.kl_mean.value).toBeCloseTo(ln(2) / 4, 14);
  });

  it('perplexities, ratio and top-1 agreement on a hand-built pair', () => {
    // Base uniform over 4 tokens; adapted puts 1/2 on the target (token 1) and 1/6 elsewhere.
    // PPL(base) = 4, PPL(adapted) = 2, ratio 1/2, ln ratio = -ln 2. Top tokens: base's first
    // maximum is token 0 (a tie, llama.cpp keeps the first), adapted's is token 1 -> agreement 0.
    // KL(uniform || adapted) = 1/4 ln(1/4 / 1/2) + 3/4 ln(1/4 / 1/6) = 1/4 ln(1/2) + 3/4 ln(3/2).
    const base = logs([0.25, 0.25, 0.25, 0.25]);
    const adapted = logs([1 / 6, 1 / 2, 1 / 6, 1 / 6]);
    const d = driftStats([base, base], [adapted, adapted], [1, 1]);
    expect(d.ppl_base).toBeCloseTo(4, 12);
    expect(d.ppl_adapted).toBeCloseTo(2, 12);
    expect(d.ppl_ratio.value).toBeCloseTo(0.5, 12);
    expect(d.ln_ppl_ratio.value).toBeCloseTo(-ln(2), 12);
    expect(d.top1_agreement.value).toBe(0);
    expect(d.kl_mean.value).toBeCloseTo(0.25 * ln(0.5) + 0.75 * ln(1.5), 12);
    // Δp = 1/2 - 1/4 at both positions.
    expect(d.delta_p_rms).toBeCloseTo(0.25, 12);
    // Two positions: too few for a stderr (llama.cpp needs more than 10).
    expect(d.kl_mean.stderr).toBeNull();
  });

  it('mean, stderr, median, p99 and max agree with an independent per-position computation', () => {
    // 12 positions over a 3-token vocabulary, probabilities chosen by hand.
    const n = 12;
    const P: number[][] = [];
    const Q: number[][] = [];
    const targets: number[] = [];
    for (let i = 0; i < n; i++) {
      const a = 0.2 + 0.05 * i; // base mass on token 0
      const b = 0.6 - 0.04 * i; // adapted mass on token 0
      P.push([a, (1 - a) / 2, (1 - a) / 2]);
      Q.push([b, (1 - b) / 3, (2 * (1 - b)) / 3]);
      targets.push(i % 3);
    }
    // Independent: KL straight from probabilities, sum p * ln(p / q).
    const kl = P.map((p, i) => p.reduce((s, pj, j) => s + pj * ln(pj / Q[i]![j]!), 0));
    const mean = kl.reduce((s, x) => s + x, 0) / n;
    const sd = Math.sqrt(kl.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1));
    const sorted = [...kl].sort((x, y) => x - y);
    // Paired NLL differences: the ln PPL ratio is their mean, its stderr their std / sqrt(n).
    const diff = targets.map((t, i) => -ln(Q[i]![t]!) + ln(P[i]![t]!));
    const dMean = diff.reduce((s, x) => s + x, 0) / n;
    const dSe = Math.sqrt(diff.reduce((s, x) => s + (x - dMean) ** 2, 0) / (n - 1) / n);
    // Top-1 by hand: base's top is token 0 once a >= (1-a)/2, i.e. a >= 1/3 (i >= 3); adapted's is
    // token 0 while b > 2(1-b)/3, i.e. b > 0.4 (i < 5), else token 2. Agree for i = 3, 4: 2 of 12.
    const d = driftStats(P.map(logs), Q.map(logs), targets);
    expect(d.kl_mean.value).toBeCloseTo(mean, 12);
    expect(d.kl_mean.stderr).toBeCloseTo(sd / Math.sqrt(n), 12);
    expect(d.kl_median).toBeCloseTo((sorted[5]! + sorted[6]!) / 2, 12);
    expect(d.kl_p99).toBeCloseTo(sorted[10]! + 0.89 * (sorted[11]! - sorted[10]!), 12); // 0.99 * 11 = 10.89
    expect(d.kl_max).toBeCloseTo(sorted[11]!, 12);
    expect(d.ln_ppl_ratio.value).toBeCloseTo(dMean, 12);
    expect(d.ln_ppl_ratio.stderr).toBeCloseTo(dSe, 12);
    expect(d.ppl_ratio.value).toBeCloseTo(Math.exp(dMean), 12);
    expect(d.top1_agreement.value).toBeCloseTo(2 / 12, 15);
    expect(d.top1_agreement.stderr).toBeCloseTo(Math.sqrt((2 / 12) * (10 / 12) / 11), 15);
  });

  it('rejects mismatched, empty or non-finite input with an InputError naming the problem', () => {
    const r = logs([0.5, 0.5]);
    expect(() => driftStats([], [], [])).toThrow(InputError);
    expect(() => driftStats([r, r], [r], [0, 0])).toThrow('base has 2 positions, adapted 1, targets 2');
    expect(() => driftStats([r], [logs([0.2, 0.3, 0.5])], [0])).toThrow('position 0 has 2 base log-probs but 3 adapted');
    expect(() => driftStats([r], [r], [2])).toThrow('target token 2 at position 0 is outside the vocabulary (size 2)');
    expect(() => driftStats([[NaN, 0]], [r], [0])).toThrow('position 0, token 0 has log-prob NaN');
  });
});
