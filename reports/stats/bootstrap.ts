// Paired bootstrap of the mean difference (B - A) over items scored by both: resampling items,
// not runs, keeps each item's pair together, which is what makes the test paired (Efron &
// Tibshirani 1993, "An Introduction to the Bootstrap", ch. 13 percentile intervals).
import { mulberry32 } from './rng.ts';

export interface BootstrapResult {
  /** Observed mean of B - A. */
  diff: number;
  /** Percentile interval at level 1 - alpha. */
  low: number;
  high: number;
  /**
   * Two-sided bootstrap p-value: twice the share of resampled means on the far side of zero,
   * capped at 1. Below alpha when the percentile CI at 1 - alpha excludes 0 (up to the
   * interpolation between the two resamples nearest each end).
   */
  pValue: number;
  resamples: number;
}

export interface BootstrapOptions {
  alpha?: number;
  resamples?: number;
  seed?: number;
}

/** Linear-interpolation quantile of sorted values (numpy's default "linear" method). */
function quantile(sorted: Float64Array, q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const l = sorted[lo] ?? 0;
  return l + ((sorted[hi] ?? l) - l) * (pos - lo);
}

export function pairedBootstrap(a: readonly number[], b: readonly number[], options: BootstrapOptions = {}): BootstrapResult {
  const { alpha = 0.05, resamples = 2000, seed = 1 } = options;
  if (a.length !== b.length) throw new Error(`paired bootstrap needs equal lengths, got ${a.length} and ${b.length}`);
  const n = a.length;
  if (n === 0) return { diff: 0, low: 0, high: 0, pValue: 1, resamples: 0 };
  const d = a.map((x, i) => (b[i] ?? 0) - x);
  const diff = d.reduce((s, x) => s + x, 0) / n;
  const rand = mulberry32(seed);
  const means = new Float64Array(resamples);
  let atOrBelow = 0;
  let atOrAbove = 0;
  for (let r = 0; r < resamples; r++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += d[Math.floor(rand() * n)] ?? 0;
    const m = s / n;
    means[r] = m;
    if (m <= 0) atOrBelow++;
    if (m >= 0) atOrAbove++;
  }
  means.sort();
  return {
    diff,
    low: quantile(means, alpha / 2),
    high: quantile(means, 1 - alpha / 2),
    pValue: Math.min(1, (2 * Math.min(atOrBelow, atOrAbove)) / resamples),
    resamples,
  };
}
