// Timing and roofline arithmetic shared by every kernel bench. Each kernel declares the flops
// and bytes one call must do (tinygrad's habit, STYLE.md), tinybench times it, and the row
// reports how close it came to whichever machine limit binds it.
import { Bench } from 'tinybench';

export interface Timing {
  min_ms: number;
  median_ms: number;
  p90_ms: number;
  max_ms: number;
  samples: number;
}

export interface TimeOptions {
  /** Time budget per task in ms (tinybench `time`). */
  timeMs: number;
  /** Minimum measured iterations. */
  iterations: number;
  warmupIterations: number;
}

export const QUICK_TIMING: TimeOptions = { timeMs: 150, iterations: 5, warmupIterations: 2 };
export const FULL_TIMING: TimeOptions = { timeMs: 1000, iterations: 20, warmupIterations: 5 };

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[idx] as number;
}

/** Times `fn` with tinybench (warm-up, then at least `iterations` runs or `timeMs`). */
export async function timeIt(name: string, fn: () => unknown, options: TimeOptions): Promise<Timing> {
  // A probe call sizes the run: a 30 s prefill at 32k positions gets 3 timed runs, not 20.
  const t0 = performance.now();
  await fn();
  const probeMs = performance.now() - t0;
  const slow = probeMs * options.iterations > 10 * options.timeMs;
  const bench = new Bench({
    time: options.timeMs,
    iterations: slow ? Math.max(3, Math.ceil((10 * options.timeMs) / probeMs)) : options.iterations,
    warmup: true,
    warmupIterations: slow ? 1 : options.warmupIterations,
    warmupTime: 0,
    retainSamples: true,
  });
  bench.add(name, fn as () => void);
  await bench.run();
  const result = bench.tasks[0]?.result;
  if (!result || result.state !== 'completed') {
    const error = result && 'error' in result ? (result.error as Error).message : (result?.state ?? 'no result');
    throw new Error(`timing ${name} failed: ${error}`);
  }
  const samples = [...(result.latency.samples ?? [])].sort((a, b) => a - b);
  return {
    min_ms: result.latency.min,
    median_ms: result.latency.p50,
    p90_ms: percentile(samples, 0.9),
    max_ms: result.latency.max,
    samples: result.latency.samplesCount,
  };
}

/** The machine's measured limits, taken in the same run as the kernels. */
export interface MachineLimits {
  /** STREAM-like triad bandwidth, GB/s (1e9 bytes). */
  bandwidthGBs: number;
  /** fp32 GEMM throughput, GFLOP/s. */
  peakGflops: number;
  device: string;
  backend: string;
}

export interface KernelCost {
  flops: number;
  bytes: number;
}

export interface Roofline {
  gflops: number;
  gbps: number;
  bound: 'memory' | 'compute';
  roofline_fraction: number;
}

/**
 * Which roof binds: a kernel whose arithmetic intensity (flops per byte) is below the machine
 * balance (peak flops / bandwidth) cannot reach peak flops, so memory is its limit.
 */
export function roofline(cost: KernelCost, medianMs: number, limits: MachineLimits): Roofline {
  const seconds = medianMs / 1e3;
  const gflops = seconds > 0 ? cost.flops / seconds / 1e9 : 0;
  const gbps = seconds > 0 ? cost.bytes / seconds / 1e9 : 0;
  const balance = limits.peakGflops / limits.bandwidthGBs;
  const bound = cost.bytes > 0 && cost.flops / cost.bytes < balance ? 'memory' : 'compute';
  const roofline_fraction = bound === 'memory' ? gbps / limits.bandwidthGBs : gflops / limits.peakGflops;
  return { gflops, gbps, bound, roofline_fraction };
}

/** Re-judges a row against other limits (same gflops/gbps, so the same intensity). */
export function reroof<R extends Roofline>(row: R, limits: MachineLimits): R {
  const intensity = row.gbps > 0 ? row.gflops / row.gbps : Infinity;
  const bound = intensity < limits.peakGflops / limits.bandwidthGBs ? 'memory' : 'compute';
  return { ...row, bound, roofline_fraction: bound === 'memory' ? row.gbps / limits.bandwidthGBs : row.gflops / limits.peakGflops };
}

/** A result row: the JSON fields plus the check and a note. */
export interface KernelRow extends Roofline {
  kernel: string;
  variant: string;
  backend: string;
  device: string;
  /** "MxKxN" for matmuls; kernel-specific dims otherwise. */
  shape: string;
  dtype: string;
  median_ms: number;
  min_ms: number;
  p90_ms: number;
  max_ms: number;
  /** Largest |kernel - reference| over the checked outputs. */
  max_abs_err: number;
  /** Whether the kernel computes the reference exactly up to float summation order. */
  exact: boolean;
  note?: string;
}

/** Max |a - b|, throwing if lengths differ (a shape bug, not a numeric one). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`output length ${a.length} != reference length ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs((a[i] as number) - (b[i] as number));
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/** Refuses to time a wrong kernel: a fast wrong answer is a failure, not a result. */
export function assertClose(label: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: number): number {
  const err = maxAbsDiff(got, want);
  if (!(err <= tol)) throw new Error(`${label}: numeric check failed, max |error| ${err.toExponential(3)} > tolerance ${tol.toExponential(3)}`);
  return err;
}

/** Deterministic pseudo-random floats in [-1, 1) (mulberry32), so runs are comparable. */
export function seededFloats(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

/** What every kernel bench receives: the measured roofs, the timing budget and the grid size. */
export interface BenchContext {
  limits: MachineLimits;
  timing: TimeOptions;
  device: 'cpu' | 'cuda';
  quick: boolean;
  /** Progress lines (stderr in the CLI). */
  log: (line: string) => void;
  /** Peak-memory budget in bytes for series that grow (long-attention). */
  maxMemoryBytes: number;
}

export interface BenchOutcome {
  rows: KernelRow[];
  /** Variants that could not run here, each with the reason (never silently dropped). */
  skipped: string[];
  /** Free-form per-kernel findings (fitted exponents, imbalance), for the closing note. */
  notes: string[];
}

/** Builds a row from timings, cost and the limits. */
export function makeRow(
  base: Omit<KernelRow, keyof Roofline | 'median_ms' | 'min_ms' | 'p90_ms' | 'max_ms'>,
  t: Timing,
  cost: KernelCost,
  limits: MachineLimits,
): KernelRow {
  return { ...base, median_ms: t.median_ms, min_ms: t.min_ms, p90_ms: t.p90_ms, max_ms: t.max_ms, ...roofline(cost, t.median_ms, limits) };
}
