// Pair-table NF4 decode GEMV in WebAssembly, scalar: the SIMD kernels spend 0.75 shuffle µops
// per weight rebuilding float32 codes from byte planes and are bound by the two shuffle ports
// (docs/kernels.md). This kernel moves no shuffles at all: for each packed byte position j
// (= columns 2j, 2j+1), T_j[byte] = code[hi]·x[2j] + code[lo]·x[2j+1] for all 256 bytes, so a
// weight PAIR costs a byte load, an index computation, a table load and an add. Its limits are
// the load ports and the 6-wide rename instead of the two shuffle ports.
//
// Layout: weights re-laid out once at load as (K/64, N, 32) — block column b, row r, its 32
// bytes — so the 32 tables of one block (32 KiB) stay in L1 while every row of a thread's
// range streams past them, and the weights are read as one sequential stream per thread.
// Tables live at a fixed address per thread, baked into that thread's module, so V8 turns each
// lookup into `movzx` + `lea` + `vmovss` + `vaddss` (4 µops per 2 weights; docs/kernels.md).
// Exact NF4 weights: each table entry is the float32 sum of two exact products, then float32
// sums per 64-weight block times absmax, as in dequantize-then-MatMul up to summation order.
import { NF4_BLOCK, NF4_CODE } from '../runners/quant/nf4.ts';
import { encodeModule, F32, I32, op, V128 } from './wasm-encoder.ts';
import { get, set } from './wasm-lanes.ts';
import { WasmPool } from './wasm-pool.ts';
import type { Nf4Matrix } from './nf4-gemv-wasm.ts';

const PAGE = 65536;
const TABLE_BYTES = 32 * 256 * 4;
const CODE_AT = 0;
/** Thread i's tables start here (after the 64-byte code book). */
export const tablesAt = (thread: number): number => 64 + thread * TABLE_BYTES;

const f32Const0 = [0x43, 0, 0, 0, 0];
// 8 bytes (16 weights) per loop step: 4 or 16 measured slower (loop overhead; spills).
const BYTES_PER_STEP = 8;

/** gemv(w, a, x, y, rStart, rEnd, nRows, nBlocks) with this thread's tables at `tab`. */
function gemvBody(tab: number): number[] {
  const P = { w: 0, a: 1, x: 2, y: 3, rStart: 4, rEnd: 5, nRows: 6, nBlocks: 7 } as const;
  const L = { b: 8, wp: 9, ap: 10, yp: 11, yEnd: 12, tp: 13, xb: 14, s0: 15, x0: 19, c0: 20, b0: 24, tmp: 28 } as const;
  const b: number[] = [];
  const end = () => b.push(...op.end);
  b.push(...op.block, ...get(P.rStart), ...get(P.rEnd), ...op.i32LtU, 0x45, op.brIf, 0);
  b.push(...get(P.y), ...get(P.rEnd), ...op.i32Const(2), ...op.i32Shl, ...op.i32Add, ...set(L.yEnd));
  // y[rStart..rEnd) = 0: blocks accumulate into it.
  b.push(...get(P.y), ...get(P.rStart), ...op.i32Const(2), ...op.i32Shl, ...op.i32Add, ...set(L.yp), ...op.loop);
  b.push(...get(L.yp), ...f32Const0, ...op.f32Store(), ...get(L.yp), ...op.i32Const(4), ...op.i32Add, op.localTee, L.yp, ...get(L.yEnd), ...op.i32Ne, op.brIf, 0);
  end();
  for (let q = 0; q < 4; q++) b.push(...op.i32Const(CODE_AT), ...op.v128Load(16 * q), ...set(L.c0 + q));
  b.push(...op.i32Const(0), ...set(L.b), ...op.loop);
  // --- this block's 32 pair tables ---
  b.push(...get(P.x), ...get(L.b), ...op.i32Const(256), ...op.i32Mul, ...op.i32Add, ...set(L.xb));
  b.push(...op.i32Const(tab), ...set(L.tp), ...op.loop);
  b.push(...get(L.xb), ...op.f32Load(0), ...set(L.x0));
  b.push(...get(L.xb), ...op.f32Load(4), ...op.f32x4Splat, ...set(L.tmp));
  for (let q = 0; q < 4; q++) b.push(...get(L.c0 + q), ...get(L.tmp), ...op.f32x4Mul, ...set(L.b0 + q));
  for (let h = 0; h < 16; h++) {
    b.push(...op.i32Const(CODE_AT), ...op.f32Load(4 * h), ...get(L.x0), ...op.f32Mul, ...op.f32x4Splat, ...set(L.tmp));
    for (let q = 0; q < 4; q++) b.push(...get(L.tp), ...get(L.tmp), ...get(L.b0 + q), ...op.f32x4Add, ...op.v128Store(64 * h + 16 * q));
  }
  b.push(...get(L.xb), ...op.i32Const(8), ...op.i32Add, ...set(L.xb));
  b.push(...get(L.tp), ...op.i32Const(1024), ...op.i32Add, op.localTee, L.tp, ...op.i32Const(tab + TABLE_BYTES), ...op.i32Ne, op.brIf, 0);
  end();
  // --- every row of this thread's range, one 64-weight block ---
  // wp = w + (b * nRows + rStart) * 32; ap = a + (b * nRows + rStart) * 4
  b.push(...get(L.b), ...get(P.nRows), ...op.i32Mul, ...get(P.rStart), ...op.i32Add, op.localTee, L.tp);
  b.push(...op.i32Const(5), ...op.i32Shl, ...get(P.w), ...op.i32Add, ...set(L.wp));
  b.push(...get(L.tp), ...op.i32Const(2), ...op.i32Shl, ...get(P.a), ...op.i32Add, ...set(L.ap));
  b.push(...get(P.y), ...get(P.rStart), ...op.i32Const(2), ...op.i32Shl, ...op.i32Add, ...set(L.yp), ...op.loop);
  // Four independent sums, 8 bytes per loop iteration: fully unrolled, TurboFan hoists all 32
  // table loads ahead of the adds and spills them; a loop keeps each iteration's loads in registers.
  for (let s = 0; s < 4; s++) b.push(...f32Const0, ...set(L.s0 + s));
  b.push(...op.i32Const(tab), ...set(L.tp), ...op.loop);
  for (let j = 0; j < BYTES_PER_STEP; j++) {
    const s = L.s0 + (j & 3);
    b.push(...get(L.tp), ...get(L.wp), ...op.i32Load8U(j), ...op.i32Const(2), ...op.i32Shl, ...op.i32Add, ...op.f32Load(1024 * j), ...get(s), ...op.f32Add, ...set(s));
  }
  b.push(...get(L.wp), ...op.i32Const(BYTES_PER_STEP), ...op.i32Add, ...set(L.wp));
  b.push(...get(L.tp), ...op.i32Const(1024 * BYTES_PER_STEP), ...op.i32Add, op.localTee, L.tp, ...op.i32Const(tab + TABLE_BYTES), ...op.i32Ne, op.brIf, 0);
  end();
  b.push(...get(L.yp), ...get(L.yp), ...op.f32Load());
  b.push(...get(L.s0), ...get(L.s0 + 1), ...op.f32Add, ...get(L.s0 + 2), ...get(L.s0 + 3), ...op.f32Add, ...op.f32Add);
  b.push(...get(L.ap), ...op.f32Load(), ...op.f32Mul, ...op.f32Add, ...op.f32Store());
  b.push(...get(L.ap), ...op.i32Const(4), ...op.i32Add, ...set(L.ap));
  b.push(...get(L.yp), ...op.i32Const(4), ...op.i32Add, op.localTee, L.yp, ...get(L.yEnd), ...op.i32Ne, op.brIf, 0);
  end();
  b.push(...get(L.b), ...op.i32Const(1), ...op.i32Add, op.localTee, L.b, ...get(P.nBlocks), ...op.i32Ne, op.brIf, 0);
  end();
  end();
  return b;
}

export function pairLutModuleBytes(tab: number, maxPages = 65536): Uint8Array<ArrayBuffer> {
  return encodeModule({ module: 'env', field: 'mem', minPages: 1, maxPages, shared: true }, [{
    name: 'gemv',
    params: new Array<typeof I32>(8).fill(I32),
    results: [],
    locals: [...new Array<typeof I32>(7).fill(I32), ...new Array<typeof F32>(5).fill(F32), ...new Array<typeof V128>(9).fill(V128)],
    body: gemvBody(tab),
  }]);
}

/** (N, K/2) packed bytes -> (K/64, N, 32): block column, row, the row's 32 bytes. */
export function blockColumnWeights(packed: Uint8Array, n: number, k: number): Uint8Array {
  const half = k / 2;
  const blocks = k / NF4_BLOCK;
  const out = new Uint8Array(packed.length);
  for (let r = 0; r < n; r++) {
    for (let bl = 0; bl < blocks; bl++) out.set(packed.subarray(r * half + 32 * bl, r * half + 32 * bl + 32), (bl * n + r) * 32);
  }
  return out;
}

/** (N, K/64) absmax -> (K/64, N). */
export function blockColumnAbsmax(absmax: Float32Array, n: number, k: number): Float32Array {
  const blocks = k / NF4_BLOCK;
  const out = new Float32Array(absmax.length);
  for (let r = 0; r < n; r++) for (let bl = 0; bl < blocks; bl++) out[bl * n + r] = absmax[r * blocks + bl] as number;
  return out;
}

export class Nf4GemvPairLut {
  private readonly f32: Float32Array;

  private constructor(
    readonly n: number,
    readonly k: number,
    private readonly pool: WasmPool,
    memory: WebAssembly.Memory,
    private readonly ptr: { w: number; a: number; x: number; y: number },
  ) {
    this.f32 = new Float32Array(memory.buffer);
  }

  static async create(m: Nf4Matrix, threads = 1): Promise<Nf4GemvPairLut> {
    if (m.k % NF4_BLOCK !== 0) throw new Error(`pair-table NF4 GEMV needs K divisible by ${NF4_BLOCK}, got K=${m.k}`);
    if (m.packed.length !== (m.n * m.k) / 2 || m.absmax.length !== (m.n * m.k) / NF4_BLOCK) {
      throw new Error(`NF4 matrix ${m.n}x${m.k}: expected ${(m.n * m.k) / 2} packed bytes and ${(m.n * m.k) / NF4_BLOCK} absmax values, got ${m.packed.length} and ${m.absmax.length}`);
    }
    const w = tablesAt(threads);
    const a = w + m.packed.length;
    const x = a + m.absmax.byteLength;
    const y = x + 4 * m.k;
    const pages = Math.ceil((y + 4 * m.n) / PAGE);
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    const u8 = new Uint8Array(memory.buffer);
    u8.set(new Uint8Array(NF4_CODE.buffer, NF4_CODE.byteOffset, 64), CODE_AT);
    u8.set(blockColumnWeights(m.packed, m.n, m.k), w);
    const am = blockColumnAbsmax(m.absmax, m.n, m.k);
    u8.set(new Uint8Array(am.buffer, am.byteOffset, am.byteLength), a);
    // One module per thread: each bakes its own table address into its loads.
    const modules = Array.from({ length: threads }, (_, i) => new WebAssembly.Module(pairLutModuleBytes(tablesAt(i))));
    const pool = await WasmPool.create(modules, memory, threads, ['gemv']);
    return new Nf4GemvPairLut(m.n, m.k, pool, memory, { w, a, x, y });
  }

  gemv(x: Float32Array): Float32Array {
    if (x.length !== this.k) throw new Error(`NF4 GEMV: x has ${x.length} values, expected K=${this.k}`);
    const p = this.ptr;
    this.f32.set(x, p.x >> 2);
    const t = this.pool.threads;
    this.pool.parallel('gemv', (i) => [p.w, p.a, p.x, p.y, Math.round((i * this.n) / t), Math.round(((i + 1) * this.n) / t), this.n, this.k / NF4_BLOCK]);
    return this.f32.slice(p.y >> 2, (p.y >> 2) + this.n);
  }

  get threads(): number {
    return this.pool.threads;
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
