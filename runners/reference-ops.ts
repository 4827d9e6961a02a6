// The few operations the float64 reference forward is made of. Vectors are plain Float64Array;
// weights stay in their loaded Float32Array (every float32 is exact in float64, so all arithmetic
// below is float64).

type Vec = ArrayLike<number>;

/** y = W x (+ b) for a row-major weight W of shape [out, in] (torch nn.Linear layout). */
export function linear(w: Vec, x: Vec, out: number, inp: number, bias?: Vec | null): Float64Array {
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = bias ? bias[o]! : 0;
    const row = o * inp;
    for (let i = 0; i < inp; i++) s += w[row + i]! * x[i]!;
    y[o] = s;
  }
  return y;
}

export function dot(a: Vec, b: Vec, n: number, aOffset = 0, bOffset = 0): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += a[aOffset + i]! * b[bOffset + i]!;
  return s;
}

/**
 * RMSNorm (Zhang & Sennrich 2019; HF LlamaRMSNorm): x / sqrt(mean(x²) + eps) * weight.
 * With `weight` null it is Llama 4's parameter-free QK "L2 norm" (Llama4TextL2Norm), which is the
 * same formula without the gain.
 */
export function rmsNorm(x: Vec, weight: Vec | null, eps: number): Float64Array {
  const n = x.length;
  let ms = 0;
  for (let i = 0; i < n; i++) ms += x[i]! * x[i]!;
  const scale = 1 / Math.sqrt(ms / n + eps);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) y[i] = x[i]! * scale * (weight ? weight[i]! : 1);
  return y;
}

/** Softmax with the max subtracted first (the result is unchanged; exp cannot overflow). */
export function softmax(x: Vec): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) max = Math.max(max, x[i]!);
  const y = new Float64Array(x.length);
  let sum = 0;
  for (let i = 0; i < x.length; i++) {
    y[i] = Math.exp(x[i]! - max);
    sum += y[i]!;
  }
  for (let i = 0; i < x.length; i++) y[i] = y[i]! / sum;
  return y;
}

/** log-softmax: x - max - log(sum(exp(x - max))). */
export function logSoftmax(x: Vec): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) max = Math.max(max, x[i]!);
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += Math.exp(x[i]! - max);
  const lse = max + Math.log(sum);
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = x[i]! - lse;
  return y;
}

/** SiLU (swish), the activation of LLaMA's SwiGLU: x * sigmoid(x). */
export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

export function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/** SwiGLU feed-forward (Shazeer 2020): down( silu(gate x) * up x ). */
export function swiglu(
  x: Vec,
  gate: Vec,
  up: Vec,
  down: Vec,
  hidden: number,
  inter: number,
  bias: { gate?: Vec | null; up?: Vec | null; down?: Vec | null } = {},
): Float64Array {
  const g = linear(gate, x, inter, hidden, bias.gate);
  const u = linear(up, x, inter, hidden, bias.up);
  for (let i = 0; i < inter; i++) g[i] = silu(g[i]!) * u[i]!;
  return linear(down, g, hidden, inter, bias.down);
}

export function addInto(target: Float64Array, x: Vec): void {
  for (let i = 0; i < target.length; i++) target[i] = target[i]! + x[i]!;
}
