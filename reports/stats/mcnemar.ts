// McNemar's exact test for two classifiers scored on the same items: only the discordant pairs
// carry information, and under H0 each is equally likely to go either way, so the smaller count
// is Binomial(b + c, 1/2). Two-sided p = min(1, 2 * P(X <= min(b, c))), exactly as
// statsmodels.stats.contingency_tables.mcnemar(table, exact=True) computes it.

export interface McNemarResult {
  /** A right, B wrong. */
  b: number;
  /** A wrong, B right. */
  c: number;
  pValue: number;
}

/**
 * sum_{k<=m} C(n, k) / 2^n. Exact while the binomial sum is a safe integer (dividing by a power
 * of two is exact), so small tables give the textbook fraction to the last bit; otherwise in
 * log space, so n in the millions cannot underflow 0.5^n.
 */
function binomialHalfCdf(m: number, n: number): number {
  if (n > 1023) return binomialHalfCdfLog(m, n); // 2^n itself overflows past 1023
  let coef = 1;
  let sum = 1;
  for (let k = 1; k <= m; k++) {
    const product = coef * (n - k + 1); // = k * C(n, k): exact only while a safe integer
    if (product > Number.MAX_SAFE_INTEGER) return binomialHalfCdfLog(m, n);
    coef = product / k;
    sum += coef;
  }
  return sum <= Number.MAX_SAFE_INTEGER ? sum / 2 ** n : binomialHalfCdfLog(m, n);
}

function binomialHalfCdfLog(m: number, n: number): number {
  let logTerm = -n * Math.LN2; // k = 0: C(n,0) / 2^n
  let maxLog = logTerm;
  const logs = [logTerm];
  for (let k = 1; k <= m; k++) {
    logTerm += Math.log(n - k + 1) - Math.log(k);
    logs.push(logTerm);
    if (logTerm > maxLog) maxLog = logTerm;
  }
  let sum = 0;
  for (const l of logs) sum += Math.exp(l - maxLog);
  return Math.exp(maxLog) * sum;
}

export function mcnemarExact(b: number, c: number): McNemarResult {
  if (!Number.isInteger(b) || !Number.isInteger(c) || b < 0 || c < 0) {
    throw new Error(`McNemar counts must be non-negative integers, got b=${b}, c=${c}`);
  }
  const n = b + c;
  if (n === 0) return { b, c, pValue: 1 }; // no discordant pair: no evidence of a difference
  return { b, c, pValue: Math.min(1, 2 * binomialHalfCdf(Math.min(b, c), n)) };
}

/** Discordant counts from paired 0/1 outcomes (same order: item i of A pairs with item i of B). */
export function discordantPairs(a: readonly number[], bOutcomes: readonly number[]): { b: number; c: number } {
  let b = 0;
  let c = 0;
  a.forEach((x, i) => {
    const y = bOutcomes[i];
    if (x === 1 && y === 0) b++;
    else if (x === 0 && y === 1) c++;
  });
  return { b, c };
}
