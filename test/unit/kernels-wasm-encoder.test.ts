// The hand-written WebAssembly encoder and the tiled weight layout.
import { describe, expect, it } from 'vitest';
import { encodeModule, I32, op, sleb, uleb } from '../../kernels/wasm-encoder.ts';
import { tileAbsmax, tileWeights } from '../../kernels/nf4-gemv-tiled.ts';
import { gemvModuleBytes } from '../../kernels/nf4-gemv-wasm.ts';

describe('LEB128', () => {
  it('encodes the spec examples', () => {
    // WebAssembly spec / Wikipedia LEB128: 624485 -> e5 8e 26; -123456 -> c0 bb 78.
    expect(uleb(624485)).toEqual([0xe5, 0x8e, 0x26]);
    expect(sleb(-123456)).toEqual([0xc0, 0xbb, 0x78]);
    expect(uleb(0)).toEqual([0]);
    expect(sleb(64)).toEqual([0xc0, 0x00]); // 64 needs a second byte: bit 6 would read as the sign
  });
});

describe('encodeModule', () => {
  it('emits a module V8 validates and runs (i32 add over an imported memory)', () => {
    const bytes = encodeModule({ module: 'env', field: 'mem', minPages: 1, maxPages: 1, shared: false }, [
      { name: 'add', params: [I32, I32], results: [I32], locals: [], body: [op.localGet, 0, op.localGet, 1, ...op.i32Add] },
    ]);
    const mem = new WebAssembly.Memory({ initial: 1, maximum: 1 });
    const add = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { mem } }).exports.add as (a: number, b: number) => number;
    expect(add(2, 40)).toBe(42);
  });

  it('the plain-SIMD GEMV module validates in this V8', () => {
    expect(WebAssembly.validate(gemvModuleBytes({ relaxed: false }))).toBe(true);
  });
});

describe('tiled layout', () => {
  it('transposes packed bytes into (N/rows, K/2, rows) tiles and absmax into (N/rows, K/64, rows)', () => {
    // 32 rows x 128 columns: 64 packed bytes per row; byte (row r, j) = r * 64 + j (mod 256).
    const n = 32;
    const k = 128;
    const packed = Uint8Array.from({ length: (n * k) / 2 }, (_, i) => i & 0xff);
    const t = tileWeights(packed, n, k, 16);
    // Tile 1 (rows 16..31), column pair j = 3, row 5 within the tile = row 21: byte 21 * 64 + 3.
    expect(t[1 * 64 * 16 + 3 * 16 + 5]).toBe((21 * 64 + 3) & 0xff);
    const absmax = Float32Array.from({ length: (n * k) / 64 }, (_, i) => i);
    const a = tileAbsmax(absmax, n, k, 16);
    // Tile 0, block 1, row 7: absmax index 7 * 2 + 1 = 15.
    expect(a[0 * 2 * 16 + 1 * 16 + 7]).toBe(15);
  });
});
