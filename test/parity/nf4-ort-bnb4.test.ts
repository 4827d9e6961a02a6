// Our NF4 packing is ORT MatMulBnb4's, and the WebAssembly GEMV computes the same product.
import { describe, expect, it } from 'vitest';
import { nf4Dequantize, nf4Quantize } from '../../runners/quant/nf4.ts';
import { runOnce } from '../../runners/ort/session.ts';
import { matMulBnb4Graph } from '../../kernels/nf4-graphs.ts';
import { Nf4GemvWasm } from '../../kernels/nf4-gemv-wasm.ts';
import { Nf4GemvTiled } from '../../kernels/nf4-gemv-tiled.ts';
import { createNf4Gemv } from '../../kernels/nf4-gemv.ts';
import { Nf4GemvJs } from '../../kernels/nf4-gemv-js.ts';
import { seededFloats } from '../../kernels/measure.ts';

const N = 48;
const K = 128;

function reference(x: Float32Array, w: Float32Array, m: number): Float64Array {
  const y = new Float64Array(m * N);
  for (let r = 0; r < m; r++) for (let n = 0; n < N; n++) {
    let acc = 0;
    for (let k = 0; k < K; k++) acc += (x[r * K + k] as number) * (w[n * K + k] as number);
    y[r * N + n] = acc;
  }
  return y;
}

const weights = seededFloats(N * K, 3);
const q = nf4Quantize(weights);
// The 32-row tile case uses the first 32 rows (N = 48 is not a multiple of 32): a prefix of the same bytes.
const wNK = nf4Dequantize(q);

describe('NF4 vs ORT MatMulBnb4 (quant_type 1, block 64, B = (N, K) flattened)', () => {
  it('MatMulBnb4 on our packed bytes equals the float64 product with our dequantization', async () => {
    const m = 3;
    const x = seededFloats(m * K, 4);
    const model = matMulBnb4Graph({ n: N, k: K, packed: q.packed, absmax: q.absmax, blockSize: 64 });
    const y = (await runOnce(model, { A: { data: x, dims: [m, K] } })).Y?.data as Float32Array;
    const want = reference(x, wNK, m);
    // float32 sums of 128 terms of magnitude <= 1: error well under 1e-5.
    for (let i = 0; i < want.length; i++) expect(Math.abs((y[i] as number) - (want[i] as number))).toBeLessThan(1e-5);
  });

  it('swapped nibbles would NOT match (the test can tell the orders apart)', async () => {
    const swapped = q.packed.map((b) => ((b & 15) << 4) | (b >> 4));
    const x = seededFloats(K, 5);
    const model = matMulBnb4Graph({ n: N, k: K, packed: swapped, absmax: q.absmax, blockSize: 64 });
    const y = (await runOnce(model, { A: { data: x, dims: [1, K] } })).Y?.data as Float32Array;
    const want = reference(x, wNK, 1);
    const err = Math.max(...Array.from(y, (v, i) => Math.abs(v - (want[i] as number))));
    expect(err).toBeGreaterThan(1e-2);
  });
});

const KERNELS = {
  'row-major': (threads: number) => Nf4GemvWasm.create({ packed: q.packed, absmax: q.absmax, n: N, k: K }, threads),
  'tiled 16 rows': (threads: number) => Nf4GemvTiled.create({ packed: q.packed, absmax: q.absmax, n: N, k: K }, threads, { relaxed: false, subtiles: 1 }),
  'tiled 32 rows': (threads: number) => Nf4GemvTiled.create({ packed: q.packed.subarray(0, (32 * K) / 2), absmax: q.absmax.subarray(0, (32 * K) / 64), n: 32, k: K }, threads, { relaxed: false, subtiles: 2 }),
  'JS pair LUT': async (threads: number) => (threads === 1 ? new Nf4GemvJs({ packed: q.packed, absmax: q.absmax, n: N, k: K }) : Nf4GemvWasm.create({ packed: q.packed, absmax: q.absmax, n: N, k: K }, threads)),
  'the shipped factory': (threads: number) => createNf4Gemv({ packed: q.packed, absmax: q.absmax, n: N, k: K }, { threads }),
};

describe('WebAssembly SIMD NF4 GEMV', () => {
  for (const [name, make] of Object.entries(KERNELS)) for (const threads of name === 'JS pair LUT' ? [1] : [1, 2]) {
    it(`${name} matches the dequantized reference with ${threads} thread(s)`, async () => {
      const g: { n: number; gemv: (x: Float32Array) => Float32Array; close: () => Promise<void> } = await make(threads);
      try {
        for (const seed of [6, 7]) {
          const x = seededFloats(K, seed);
          const y = g.gemv(x);
          const want = reference(x, wNK, 1);
          expect(y.length).toBe(g.n);
          for (let i = 0; i < g.n; i++) expect(Math.abs((y[i] as number) - (want[i] as number))).toBeLessThan(1e-5);
        }
      } finally {
        await g.close();
      }
    });
  }

  it('rejects K not divisible by the NF4 block', async () => {
    await expect(Nf4GemvWasm.create({ packed: new Uint8Array(48), absmax: new Float32Array(1), n: 1, k: 96 })).rejects.toThrow(/K divisible by 64/);
  });
});
