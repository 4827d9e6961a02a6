// Roofline arithmetic, timing plumbing and the small pure helpers of the kernel benches.
import { describe, expect, it } from 'vitest';
import { assertClose, maxAbsDiff, roofline, seededFloats, timeIt, type MachineLimits } from '../../kernels/measure.ts';
import { scalingExponent } from '../../kernels/long-attention.ts';
import { parseBytes, toKernelRecord } from '../../harness/cli/bench.ts';
import { KernelRecordSchema } from '../../results/schema.ts';

// A made-up machine: 50 GB/s and 500 GFLOP/s, so the balance point is 10 flops per byte.
const LIMITS: MachineLimits = { bandwidthGBs: 50, peakGflops: 500, device: 'cpu', backend: 'ort' };

describe('roofline', () => {
  it('a GEMV (2 flops per 4-byte weight) is memory bound and judged on bandwidth', () => {
    // 1e9 bytes in 40 ms = 25 GB/s = half of 50 GB/s.
    const r = roofline({ flops: 5e8, bytes: 1e9 }, 40, LIMITS);
    expect(r.bound).toBe('memory');
    expect(r.gbps).toBeCloseTo(25, 9);
    expect(r.roofline_fraction).toBeCloseTo(0.5, 9);
  });

  it('a large GEMM (intensity above the balance point) is compute bound', () => {
    // 2 * 2048^3 flops over 3 * 2048^2 * 4 bytes: ~341 flops/byte > 10. 1e11 flops in 1 s = 100 GFLOP/s = 20%.
    const r = roofline({ flops: 1e11, bytes: 3 * 2048 * 2048 * 4 }, 1000, LIMITS);
    expect(r.bound).toBe('compute');
    expect(r.gflops).toBeCloseTo(100, 9);
    expect(r.roofline_fraction).toBeCloseTo(0.2, 9);
  });
});

describe('numeric checks', () => {
  it('refuses a wrong kernel and names the error', () => {
    expect(maxAbsDiff([1, 2], [1, 2.5])).toBe(0.5);
    expect(() => assertClose('k', [1, 2], [1, 2.5], 1e-3)).toThrow(/numeric check failed, max \|error\| 5\.000e-1/);
    expect(() => assertClose('k', [NaN], [0], 1)).toThrow(/numeric check failed/);
    expect(assertClose('k', [1], [1 + 1e-7], 1e-6)).toBeLessThan(1e-6);
  });

  it('seeded inputs are deterministic and inside [-scale, scale)', () => {
    const a = seededFloats(1000, 9, 0.5);
    expect(Array.from(a)).toEqual(Array.from(seededFloats(1000, 9, 0.5)));
    expect(Math.max(...a)).toBeLessThan(0.5);
    expect(Math.min(...a)).toBeGreaterThanOrEqual(-0.5);
  });
});

describe('timing and fits', () => {
  it('timeIt reports min <= median <= p90 <= max', async () => {
    const t = await timeIt('noop', () => Math.sqrt(2), { timeMs: 5, iterations: 5, warmupIterations: 1 });
    expect(t.min_ms).toBeLessThanOrEqual(t.median_ms);
    expect(t.median_ms).toBeLessThanOrEqual(t.p90_ms);
    expect(t.p90_ms).toBeLessThanOrEqual(t.max_ms);
    expect(t.samples).toBeGreaterThanOrEqual(5);
  });

  it('fits the scaling exponent of a power law', () => {
    // time = 3 * T^2 exactly -> slope 2 on log-log axes.
    expect(scalingExponent([[512, 3 * 512 ** 2], [1024, 3 * 1024 ** 2], [4096, 3 * 4096 ** 2]])).toBeCloseTo(2, 9);
    expect(scalingExponent([[512, 1]])).toBeNull();
  });
});

describe('bench CLI helpers', () => {
  it('parses --max-memory sizes in binary and decimal units', () => {
    expect(parseBytes('8GiB')).toBe(8 * 2 ** 30);
    expect(parseBytes('512MiB')).toBe(512 * 2 ** 20);
    expect(parseBytes('2e9')).toBe(2e9);
    expect(() => parseBytes('lots')).toThrow(/--max-memory "lots": expected a size like 8GiB/);
  });

  it('turns a row into a valid kernel record', () => {
    const rec = toKernelRecord({
      kernel: 'nf4-matmul', variant: 'wasm-simd-gemv-2t', backend: 'wasm', device: 'cpu', shape: '1x4096x4096', dtype: 'nf4',
      median_ms: 1.7, min_ms: 1.6, p90_ms: 1.8, max_ms: 1.9, gflops: 19, gbps: 5.4, bound: 'memory', roofline_fraction: 0.1,
      max_abs_err: 1e-6, exact: true,
    }, 'run-1', '2026-01-01T00:00:00.000Z');
    expect(KernelRecordSchema.safeParse(rec).success).toBe(true);
  });
});
