// Scalar and vector helpers the vision reference needs beyond runners/reference-ops.ts: exact GELU
// (CLIP-style MLPs use `gelu`, i.e. x * Φ(x) with the error function, not the tanh approximation)
// and LayerNorm.

/**
 * erf(x) in float64. |x| < 3: the Maclaurin series Σ (-1)^n x^(2n+1) / (n! (2n+1)) · 2/√π (converges
 * for every x; below 3 the cancellation costs at most ~4 of the 16 digits). |x| >= 3: 1 - erfc(x)
 * with erfc's continued fraction (Abramowitz & Stegun 7.1.14), evaluated bottom-up.
 */
export function erf(x: number): number {
  const a = Math.abs(x);
  if (a < 3) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 200; n++) {
      term *= (-x * x) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(a) = exp(-a²)/√π · 1 / (a + (1/2) / (a + 1 / (a + (3/2) / (a + 2 / (a + ...))))).
  let frac = a;
  for (let k = 80; k >= 1; k--) frac = a + k / 2 / frac;
  const erfc = Math.exp(-a * a) / Math.sqrt(Math.PI) / frac;
  return x > 0 ? 1 - erfc : erfc - 1;
}

/** GELU (Hendrycks & Gimpel 2016), exact form as torch.nn.functional.gelu: x/2 · (1 + erf(x/√2)). */
export function gelu(x: number): number {
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}

/** torch.nn.LayerNorm over the last dim: (x - mean) / sqrt(var + eps) · weight + bias (biased var). */
export function layerNorm(x: ArrayLike<number>, weight: ArrayLike<number>, bias: ArrayLike<number>, eps: number): Float64Array {
  const n = x.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += x[i]!;
  mean /= n;
  let v = 0;
  for (let i = 0; i < n; i++) v += (x[i]! - mean) ** 2;
  const inv = 1 / Math.sqrt(v / n + eps);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) y[i] = (x[i]! - mean) * inv * weight[i]! + bias[i]!;
  return y;
}
