// The scalar pair-table NF4 GEMV (plain wasm, no relaxed SIMD) against a float64 dot product over
// the bitsandbytes dequantization (nf4Dequantize, itself pinned to bitsandbytes in
// test/unit/nf4-quant.test.ts): exact NF4 weights, float32 summation.
import { afterAll, describe, expect, it } from 'vitest';
import { nf4Dequantize, nf4Quantize } from '../../runners/quant/nf4.ts';
import { blockColumnAbsmax, blockColumnWeights, Nf4GemvPairLut } from '../../kernels/nf4-gemv-pairlut.ts';
import { seededFloats } from '../../kernels/measure.ts';
import { createNf4Gemv } from '../../kernels/nf4-gemv.ts';

// 37 rows: odd, not a multiple of 16 (the tiled kernel's limit) and split unevenly over 2 threads.
const N = 37;
const K = 192;
const q = nf4Quantize(seededFloats(N * K, 13));
const w = nf4Dequantize(q);
const m = { packed: q.packed, absmax: q.absmax, n: N, k: K };
const opened: Nf4GemvPairLut[] = [];

function reference(x: Float32Array): { y: Float64Array; mag: number } {
  const y = new Float64Array(N);
  let mag = 0;
  for (let n = 0; n < N; n++) {
    let acc = 0;
    let abs = 0;
    for (let k = 0; k < K; k++) {
      acc += (x[k] as number) * (w[n * K + k] as number);
      abs += Math.abs((x[k] as number) * (w[n * K + k] as number));
    }
    y[n] = acc;
    mag = Math.max(mag, abs);
  }
  return { y, mag };
}

afterAll(async () => {
  for (const g of opened) await g.close();
});

describe('wasm pair-table NF4 GEMV', () => {
  for (const threads of [1, 2]) {
    it(`matches the float64 reference on ${threads} thread(s), call after call`, async () => {
      const g = await Nf4GemvPairLut.create(m, threads);
      opened.push(g);
      expect(g.threads).toBe(threads);
      for (const seed of [5, 6]) {
        // A second x checks that tables and y are rebuilt, not accumulated across calls.
        const x = seededFloats(K, seed);
        const { y: want, mag } = reference(x);
        const got = g.gemv(x);
        expect(got.length).toBe(N);
        // float32 sums of 192 products: relative error well under 1e-6 of sum|x w|.
        for (let n = 0; n < N; n++) expect(Math.abs((got[n] as number) - (want[n] as number))).toBeLessThan(1e-6 * mag);
      }
    });
  }

  it('is what createNf4Gemv ships by default, for any N; the tiled kernel still needs N % 16 = 0', async () => {
    const g = await createNf4Gemv(m, { threads: 2 });
    try {
      expect(g.variant).toBe('wasm-pairlut-2t');
      const x = seededFloats(K, 8);
      const { y: want, mag } = reference(x);
      const got = g.gemv(x);
      for (let n = 0; n < N; n++) expect(Math.abs((got[n] as number) - (want[n] as number))).toBeLessThan(1e-6 * mag);
    } finally {
      await g.close();
    }
    await expect(createNf4Gemv(m, { threads: 1, kernel: 'tiled' })).rejects.toThrow(/N by 16, got 37x192/);
  });

  it('lays weights out as (K/64, N, 32) block columns and absmax as (K/64, N)', () => {
    // 3 rows x 128 columns: 64 bytes per row, byte (row r, j) = 64 r + j.
    const packed = Uint8Array.from({ length: 3 * 64 }, (_, i) => i);
    const t = blockColumnWeights(packed, 3, 128);
    // Block column 1, row 2, byte 5 of the block = row 2's byte 32 + 5 = 64 * 2 + 37.
    expect(t[(1 * 3 + 2) * 32 + 5]).toBe(64 * 2 + 37);
    const a = blockColumnAbsmax(Float32Array.from([10, 11, 20, 21, 30, 31]), 3, 128);
    expect(Array.from(a)).toEqual([10, 20, 30, 11, 21, 31]);
  });

  it('rejects K not a multiple of 64, a short matrix and a wrong-length x', async () => {
    await expect(Nf4GemvPairLut.create({ ...m, k: 96 })).rejects.toThrow(/K divisible by 64, got K=96/);
    await expect(Nf4GemvPairLut.create({ ...m, packed: q.packed.subarray(1) })).rejects.toThrow(/expected 3552 packed bytes/);
    const g = await Nf4GemvPairLut.create(m, 1);
    opened.push(g);
    expect(() => g.gemv(new Float32Array(K - 1))).toThrow(/x has 191 values, expected K=192/);
  });
});
