// long-attention under a small --max-memory: each series stops cleanly where its estimated peak
// would pass the budget, the timed points keep their fitted exponent, and a series too short to
// fit says so instead of printing nothing.
import { describe, expect, it } from 'vitest';
import { benchLongAttention } from '../../kernels/long-attention.ts';
import type { BenchContext } from '../../kernels/measure.ts';

const BUDGET = 64 * 2 ** 20;

describe('long-attention series and --max-memory', () => {
  it('stops each series before the budget, fits exponents where 2+ lengths ran, and says when it cannot', async () => {
    const ctx: BenchContext = {
      limits: { bandwidthGBs: 50, peakGflops: 500, device: 'cpu', backend: 'ort' },
      timing: { timeMs: 1, iterations: 2, warmupIterations: 1 },
      device: 'cpu', quick: true, log: () => {}, maxMemoryBytes: BUDGET,
    };
    const out = await benchLongAttention(ctx);
    // Quick lengths are T = 256, 512. A materializing prefill holds 32 x T x T float32 scores
    // (x3 for QK^T, softmax and mask): 25 MiB at 256, 100 MiB at 512, so the budget cuts it at 512.
    expect(out.skipped.some((s) => /composed-matmul-softmax prefill from T=512: estimated .* GiB > --max-memory 0\.06 GiB/.test(s))).toBe(true);
    expect(out.notes).toContain('long-attention composed-matmul-softmax-prefill: no scaling exponent (1 length timed: T=256; a fit needs 2)');
    // Decode with a cache is small at both lengths: a full series and a fitted exponent.
    expect(out.rows.filter((r) => r.variant === 'composed-matmul-softmax-decode').map((r) => r.shape)).toEqual(['1x256x32x8x128', '1x512x32x8x128']);
    expect(out.notes.some((n) => /^long-attention composed-matmul-softmax-decode: time ~ T\^-?\d+\.\d\d over T=256,512$/.test(n))).toBe(true);
    // No timed row's estimated peak passes the budget.
    for (const r of out.rows) {
      const mib = Number(/estimated peak ([\d.]+) MiB/.exec(r.note ?? '')?.[1]);
      expect(mib).toBeLessThanOrEqual(BUDGET / 2 ** 20);
    }
  });
});
