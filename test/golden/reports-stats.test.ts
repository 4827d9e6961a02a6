// McNemar exact, paired bootstrap and the normal p-value against figures computed by hand or by
// scipy 1.17.1 (scipy.stats.binomtest, scipy.stats.norm) — never against our own earlier output.
import { describe, expect, it } from 'vitest';
import { pairedBootstrap } from '../../reports/stats/bootstrap.ts';
import { discordantPairs, mcnemarExact } from '../../reports/stats/mcnemar.ts';
import { twoSidedNormalP, zTestP } from '../../reports/stats/normal.ts';

describe('McNemar exact test', () => {
  it('b=2, c=8: p = 2 * (C(10,0)+C(10,1)+C(10,2)) / 2^10 = 2 * 56/1024', () => {
    // By hand: (1 + 10 + 45) / 1024 = 0.0546875, doubled = 0.109375;
    // scipy.stats.binomtest(2, 10, 0.5).pvalue == 0.109375.
    expect(mcnemarExact(2, 8).pValue).toBe(0.109375);
    expect(mcnemarExact(8, 2).pValue).toBe(0.109375); // symmetric in b and c
  });

  it('all discordant pairs one way: b=0, c=5 gives 2 / 2^5', () => {
    // By hand: 2 * (1/32) = 0.0625.
    expect(mcnemarExact(0, 5).pValue).toBe(0.0625);
  });

  it('caps the doubled tail at 1 (b = c = 3) and gives 1 with no discordant pair', () => {
    // By hand: P(X <= 3 | n=6) = 42/64, doubled = 1.3125 -> 1 (statsmodels caps the same way).
    expect(mcnemarExact(3, 3).pValue).toBe(1);
    expect(mcnemarExact(0, 0).pValue).toBe(1);
  });

  it('the fixture drop (12 right->wrong, 2 wrong->right) is p = 212/16384', () => {
    // By hand: 2 * (1 + 14 + 91) / 2^14 = 0.012939453125.
    expect(mcnemarExact(12, 2).pValue).toBe(0.012939453125);
  });

  it('Wikipedia/statsmodels example table [[101, 121], [59, 33]]: exact p on b=121, c=59', () => {
    // scipy.stats.binomtest(59, 180, 0.5).pvalue = 4.4344492637551645e-06.
    expect(mcnemarExact(121, 59).pValue).toBeCloseTo(4.4344492637551645e-6, 15);
  });

  it('stays finite for n where 0.5^n underflows a float64 (b=1000, c=1100)', () => {
    // scipy.stats.binomtest(1000, 2100, 0.5).pvalue = 0.03072070786424249.
    expect(mcnemarExact(1000, 1100).pValue).toBeCloseTo(0.03072070786424249, 12);
  });

  it('counts discordant pairs item by item', () => {
    // By hand: items 0 and 3 are A-right/B-wrong, item 2 is A-wrong/B-right.
    expect(discordantPairs([1, 1, 0, 1, 0], [0, 1, 1, 0, 0])).toEqual({ b: 2, c: 1 });
  });

  it('rejects counts that are not non-negative integers', () => {
    expect(() => mcnemarExact(-1, 2)).toThrow(/non-negative integers/);
  });
});

describe('paired bootstrap', () => {
  it('matches the exactly enumerated bootstrap distribution of d = [0, 0, 1] at 90%', () => {
    // By hand: a resample mean is k/3 with k ~ Binomial(3, 1/3): P = 8/27, 12/27, 6/27, 1/27 for
    // k = 0..3, so the CDF is 0.296, 0.741, 0.963, 1. The 5% quantile is 0, the 95% quantile 2/3.
    const r = pairedBootstrap([0, 0, 0], [0, 0, 1], { alpha: 0.1, resamples: 10_000, seed: 7 });
    expect(r.diff).toBeCloseTo(1 / 3, 15);
    expect(r.low).toBe(0);
    expect(r.high).toBeCloseTo(2 / 3, 15);
  });

  it('a constant difference has a zero-width interval and p = 0', () => {
    // By hand: every resample of [0.25, 0.25, ...] has mean 0.25; no resample reaches 0.
    const r = pairedBootstrap([0.5, 0.25, 0], [0.75, 0.5, 0.25], { resamples: 500 });
    expect([r.low, r.diff, r.high]).toEqual([0.25, 0.25, 0.25]);
    expect(r.pValue).toBe(0);
  });

  it('95% interval half-width is close to 1.96 plug-in standard errors for a large sample', () => {
    // Efron & Tibshirani (1993) §5.2: the bootstrap SE of a mean converges to the plug-in SE
    // sqrt(sum (d - mean)^2 / n) / sqrt(n); with n = 400 the percentile CI is near-normal.
    const n = 400;
    const a = Array.from({ length: n }, (_, i) => ((i * 37) % 101) / 100);
    const b = a.map((x, i) => x + (((i * 53) % 61) - 25) / 100);
    const d = b.map((x, i) => x - (a[i] ?? 0));
    const mean = d.reduce((s, x) => s + x, 0) / n;
    const se = Math.sqrt(d.reduce((s, x) => s + (x - mean) ** 2, 0) / n) / Math.sqrt(n);
    const r = pairedBootstrap(a, b, { resamples: 4000, seed: 3 });
    const half = (r.high - r.low) / 2;
    expect(Math.abs(half / (1.959964 * se) - 1)).toBeLessThan(0.08);
    expect(r.low).toBeLessThan(mean);
    expect(r.high).toBeGreaterThan(mean);
  });

  it('is deterministic for a seed, so a nightly verdict cannot flap', () => {
    const a = [0.1, 0.4, 0.35, 0.8, 0.6];
    const b = [0.2, 0.3, 0.5, 0.9, 0.65];
    expect(pairedBootstrap(a, b, { seed: 11 })).toEqual(pairedBootstrap(a, b, { seed: 11 }));
  });
});

describe('normal p-values (results.json baselines)', () => {
  it('matches scipy.stats.norm: 2*sf(1.959964) = 0.05, 2*sf(1) = 0.3173105', () => {
    expect(twoSidedNormalP(1.959963984540054)).toBeCloseTo(0.05, 6);
    expect(twoSidedNormalP(-1)).toBeCloseTo(0.31731050786291415, 6);
  });

  it('combines the two stderrs: 0.70±0.03 vs 0.66±0.04 is z = -0.8', () => {
    // By hand: se = sqrt(0.03^2 + 0.04^2) = 0.05, z = -0.04/0.05 = -0.8;
    // scipy: 2 * norm.sf(0.8) = 0.42371079.
    expect(zTestP(0.7, 0.03, 0.66, 0.04)).toBeCloseTo(0.42371079, 6);
    expect(zTestP(0.7, null, 0.66, null)).toBeNull();
  });
});
