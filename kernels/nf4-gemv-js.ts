// NF4 decode GEMV in plain JavaScript with a pair lookup table: the portable baseline the
// WebAssembly kernels are measured against (and a path for runtimes without wasm SIMD).
// For each packed byte position j, T[j][b] = code[b >> 4] * x[2j] + code[b & 15] * x[2j + 1]
// over all 256 byte values b, built once per call (K * 128 entries), so each row costs ONE
// table load and add per byte = per two weights. Exact NF4 weights; the pair is summed in
// float64 and stored as float32, so rounding differs from dequantize-then-MatMul by ulps.
import { NF4_BLOCK, NF4_CODE } from '../runners/quant/nf4.ts';
import type { Nf4Matrix } from './nf4-gemv-wasm.ts';

export class Nf4GemvJs {
  private readonly table: Float32Array;
  readonly threads = 1;

  constructor(private readonly m: Nf4Matrix) {
    if (m.k % NF4_BLOCK !== 0) throw new Error(`NF4 JS GEMV needs K divisible by ${NF4_BLOCK}, got K=${m.k}`);
    this.table = new Float32Array((m.k / 2) * 256);
  }

  get n(): number {
    return this.m.n;
  }

  get k(): number {
    return this.m.k;
  }

  gemv(x: Float32Array): Float32Array {
    const { n, k, packed, absmax } = this.m;
    const half = k / 2;
    const t = this.table;
    for (let j = 0; j < half; j++) {
      const x0 = x[2 * j] as number;
      const x1 = x[2 * j + 1] as number;
      const base = j * 256;
      for (let b = 0; b < 256; b++) t[base + b] = (NF4_CODE[b >> 4] as number) * x0 + (NF4_CODE[b & 15] as number) * x1;
    }
    const y = new Float32Array(n);
    const bytesPerBlock = NF4_BLOCK / 2;
    for (let row = 0; row < n; row++) {
      let acc = 0;
      let p = row * half;
      let a = row * (k / NF4_BLOCK);
      for (let j = 0; j < half; j += bytesPerBlock) {
        let s = 0;
        for (let i = j; i < j + bytesPerBlock; i++) s += t[(i << 8) | (packed[p++] as number)] as number;
        acc += s * (absmax[a++] as number);
      }
      y[row] = acc;
    }
    return y;
  }

  async close(): Promise<void> {}
}
