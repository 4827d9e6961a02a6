// Code generation for the tiled NF4 GEMV (see nf4-gemv-tiled.ts for the layout and why).
// Two functions: `tables` turns x into per-column product tables (code[c] * x[k] for the 16
// codes, stored as 4 byte planes so `i8x16.swizzle` can look them up), and `gemv16` walks
// 16-row tiles: each byte of the tile-transposed weights holds the codes of one row for two
// adjacent columns, so one swizzle per plane yields that column's 16 row products at once.
import { encodeModule, I32, op, V128 } from './wasm-encoder.ts';
import { BYTES_HI, BYTES_LO, get, HALVES_HI, HALVES_LO, range, set } from './wasm-lanes.ts';

// Within one f32x4: gather byte p of each of the 4 floats into i32 lane p.
const GROUP_BYTES = [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15];
const I32_INTERLEAVE_LO = [0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23];
const I32_INTERLEAVE_HI = [8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31];
const I64_LO = [...range(0, 8), ...range(16, 8)];
const I64_HI = [...range(8, 8), ...range(24, 8)];

export interface TiledCodegen {
  /** i8x16.relaxed_swizzle instead of i8x16.swizzle (see GemvCodegen in nf4-gemv-wasm.ts). */
  relaxed: boolean;
  /** 16-row subtiles per tile (1 or 2). */
  subtiles: number;
}

/** tables(x, code, tab, K): tab[64k + 16p + c] = byte p of f32(code[c] * x[k]). */
function tablesBody(): number[] {
  const P = { x: 0, code: 1, tab: 2, k: 3 } as const;
  const L = { xEnd: 4, c0: 5, c1: 6, c2: 7, c3: 8, xk: 9, q0: 10, q1: 11, q2: 12, q3: 13, lo01: 14, hi01: 15, lo23: 16, hi23: 17 } as const;
  const b: number[] = [];
  [L.c0, L.c1, L.c2, L.c3].forEach((c, i) => b.push(...get(P.code), ...op.v128Load(16 * i), ...set(c)));
  b.push(...get(P.x), ...get(P.k), ...op.i32Const(2), ...op.i32Shl, ...op.i32Add, ...set(L.xEnd));
  b.push(...op.loop);
  b.push(...get(P.x), ...op.f32Load(), ...op.f32x4Splat, ...set(L.xk));
  [L.q0, L.q1, L.q2, L.q3].forEach((q, i) => {
    b.push(...get(L.c0 + i), ...get(L.xk), ...op.f32x4Mul, op.localTee, q, ...get(q), ...op.i8x16Shuffle(GROUP_BYTES), ...set(q));
  });
  b.push(...get(L.q0), ...get(L.q1), ...op.i8x16Shuffle(I32_INTERLEAVE_LO), ...set(L.lo01));
  b.push(...get(L.q0), ...get(L.q1), ...op.i8x16Shuffle(I32_INTERLEAVE_HI), ...set(L.hi01));
  b.push(...get(L.q2), ...get(L.q3), ...op.i8x16Shuffle(I32_INTERLEAVE_LO), ...set(L.lo23));
  b.push(...get(L.q2), ...get(L.q3), ...op.i8x16Shuffle(I32_INTERLEAVE_HI), ...set(L.hi23));
  const planes: [number, number, readonly number[]][] = [[L.lo01, L.lo23, I64_LO], [L.lo01, L.lo23, I64_HI], [L.hi01, L.hi23, I64_LO], [L.hi01, L.hi23, I64_HI]];
  planes.forEach(([a, c, lanes], p) => b.push(...get(P.tab), ...get(a), ...get(c), ...op.i8x16Shuffle(lanes), ...op.v128Store(16 * p)));
  b.push(...get(P.tab), ...op.i32Const(64), ...op.i32Add, ...set(P.tab));
  b.push(...get(P.x), ...op.i32Const(4), ...op.i32Add, op.localTee, P.x, ...get(L.xEnd), ...op.i32Ne, op.brIf, 0, ...op.end);
  return b;
}

/**
 * gemv(w, a, tab, y, gStart, gEnd, halfK): y rows of tiles gStart..gEnd-1. A tile is
 * 16 * subtiles rows; each subtile re-reads the column's tables (L1 hits after the first), so
 * wider tiles halve the table traffic from L2 without holding more tables in registers.
 */
function gemvBody(cg: TiledCodegen): number[] {
  const S = cg.subtiles;
  const rows = 16 * S;
  const P = { w: 0, a: 1, tab: 2, y: 3, gStart: 4, gEnd: 5, halfK: 6 } as const;
  const L = { g: 7, wp: 8, ap: 9, tp: 10, bEnd: 11, rowEnd: 12, yp: 13, mask: 14, idx: 15, p0: 16, p1: 17, ab0: 18, ab1: 19, bb0: 20, bb1: 21, s: 22 } as const;
  const swizzle = cg.relaxed ? op.i8x16RelaxedSwizzle : op.i8x16Swizzle;
  const zero = op.v128Const(new Array(16).fill(0));
  const lookup = (tOff: number, u: number): number[] => {
    const c: number[] = [];
    const plane = (p: number, dst: number) => c.push(...get(L.tp), ...op.v128Load(tOff + 16 * p), ...get(L.idx), ...swizzle, ...set(dst));
    plane(0, L.p0);
    plane(1, L.p1);
    c.push(...get(L.p0), ...get(L.p1), ...op.i8x16Shuffle(BYTES_LO), ...set(L.ab0));
    c.push(...get(L.p0), ...get(L.p1), ...op.i8x16Shuffle(BYTES_HI), ...set(L.ab1));
    plane(2, L.p0);
    plane(3, L.p1);
    c.push(...get(L.p0), ...get(L.p1), ...op.i8x16Shuffle(BYTES_LO), ...set(L.bb0));
    c.push(...get(L.p0), ...get(L.p1), ...op.i8x16Shuffle(BYTES_HI), ...set(L.bb1));
    const pieces: [number, number, readonly number[]][] = [[L.ab0, L.bb0, HALVES_LO], [L.ab0, L.bb0, HALVES_HI], [L.ab1, L.bb1, HALVES_LO], [L.ab1, L.bb1, HALVES_HI]];
    pieces.forEach(([x, y, lanes], k) => {
      const s = L.s + 4 * u + k;
      c.push(...get(s), ...get(x), ...get(y), ...op.i8x16Shuffle(lanes), ...op.f32x4Add, ...set(s));
    });
    return c;
  };
  const b: number[] = [];
  b.push(...op.i32Const(15), ...op.i8x16Splat, ...set(L.mask));
  b.push(...get(P.gStart), ...set(L.g));
  b.push(...op.block, ...get(L.g), ...get(P.gEnd), ...op.i32LtU, 0x45 /* i32.eqz */, op.brIf, 0, ...op.loop);
  // wp = w + g * halfK * rows; ap = a + g * (K/64) * rows * 4 = a + g * halfK * rows / 8
  b.push(...get(P.w), ...get(L.g), ...get(P.halfK), ...op.i32Mul, ...op.i32Const(rows), ...op.i32Mul, ...op.i32Add, op.localTee, L.wp);
  b.push(...get(P.halfK), ...op.i32Const(rows), ...op.i32Mul, ...op.i32Add, ...set(L.rowEnd));
  b.push(...get(P.a), ...get(L.g), ...get(P.halfK), ...op.i32Mul, ...op.i32Const(rows / 8), ...op.i32Mul, ...op.i32Add, ...set(L.ap));
  b.push(...get(P.y), ...get(L.g), ...op.i32Const(rows * 4), ...op.i32Mul, ...op.i32Add, ...set(L.yp));
  for (let k = 0; k < 4 * S; k++) b.push(...get(L.yp), ...zero, ...op.v128Store(16 * k));
  b.push(...get(P.tab), ...set(L.tp), ...op.loop);
  for (let k = 0; k < 4 * S; k++) b.push(...zero, ...set(L.s + k));
  b.push(...get(L.wp), ...op.i32Const(32 * rows), ...op.i32Add, ...set(L.bEnd), ...op.loop);
  for (let u = 0; u < S; u++) {
    b.push(...get(L.wp), ...op.v128Load(16 * u), ...op.i32Const(4), ...op.i16x8ShrU, ...get(L.mask), ...op.v128And, ...set(L.idx), ...lookup(0, u));
    b.push(...get(L.wp), ...op.v128Load(16 * u), ...get(L.mask), ...op.v128And, ...set(L.idx), ...lookup(64, u));
  }
  b.push(...get(L.tp), ...op.i32Const(128), ...op.i32Add, ...set(L.tp));
  b.push(...get(L.wp), ...op.i32Const(rows), ...op.i32Add, op.localTee, L.wp, ...get(L.bEnd), ...op.i32Ne, op.brIf, 0, ...op.end);
  // y[tile] += s * absmax[tile, block]: the tile's scales for one block are contiguous.
  for (let k = 0; k < 4 * S; k++) {
    b.push(...get(L.yp), ...get(L.yp), ...op.v128Load(16 * k), ...get(L.s + k), ...get(L.ap), ...op.v128Load(16 * k), ...op.f32x4Mul, ...op.f32x4Add, ...op.v128Store(16 * k));
  }
  b.push(...get(L.ap), ...op.i32Const(rows * 4), ...op.i32Add, ...set(L.ap));
  b.push(...get(L.wp), ...get(L.rowEnd), ...op.i32Ne, op.brIf, 0, ...op.end);
  b.push(...get(L.g), ...op.i32Const(1), ...op.i32Add, op.localTee, L.g, ...get(P.gEnd), ...op.i32Ne, op.brIf, 0, ...op.end, ...op.end);
  return b;
}

export function tiledModuleBytes(cg: TiledCodegen, maxPages: number): Uint8Array<ArrayBuffer> {
  return encodeModule({ module: 'env', field: 'mem', minPages: 1, maxPages, shared: true }, [
    { name: 'tables', params: [I32, I32, I32, I32], results: [], locals: [I32, ...new Array<typeof V128>(13).fill(V128)], body: tablesBody() },
    { name: 'gemv', params: [I32, I32, I32, I32, I32, I32, I32], results: [], locals: [...new Array<typeof I32>(7).fill(I32), ...new Array<typeof V128>(8 + 4 * cg.subtiles).fill(V128)], body: gemvBody(cg) },
  ]);
}
