// Unpaired test for a baseline given only as results.json (scores with stderr, no items):
// z = (current - baseline) / sqrt(se_b^2 + se_c^2), two-sided normal p-value.

/** erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): ample for a p-value compared to alpha. */
function erf(x: number): number {
  const sign = x < 0 ? -1 : 1;
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return sign * y;
}

/** P(|Z| >= |z|) for standard normal Z. */
export function twoSidedNormalP(z: number): number {
  return Math.min(1, 1 - erf(Math.abs(z) / Math.SQRT2));
}

/** p-value of a difference of two independent estimates; null when neither has a stderr. */
export function zTestP(baseline: number, seBase: number | null, current: number, seCur: number | null): number | null {
  if (seBase === null && seCur === null) return null;
  const se = Math.sqrt((seBase ?? 0) ** 2 + (seCur ?? 0) ** 2);
  if (se === 0) return baseline === current ? 1 : 0;
  return twoSidedNormalP((current - baseline) / se);
}
