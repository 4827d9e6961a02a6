// NF4 decode GEMV (y = W x, W an (N, K) bitsandbytes-NF4 matrix, x one token) in hand-encoded
// WebAssembly SIMD, optionally split over worker threads sharing one memory. Exact: every
// weight is its NF4 code times its block absmax, as in nf4Dequantize; only the float summation
// order differs from a dequantize-then-MatMul reference.
//
// Why this shape: ORT's MatMulBnb4 CPU kernel dequantizes the whole matrix to float32 and then
// runs a GEMM, so decode reads 8 bytes per weight (0.5 packed + 4 written + 4 re-read) instead
// of 0.5. Here the packed bytes are read once: `i8x16.swizzle` is a 16-entry byte table lookup,
// so the float32 code book is split into 4 byte planes, each nibble vector is looked up in all
// 4, and the planes are interleaved back into f32x4 lanes. The interleave leaves weights in
// "evens then odds" order within each 32-weight group (high nibble = even element), so x is
// permuted once per call to match instead of un-permuting every weight.
import { NF4_BLOCK, NF4_CODE } from '../runners/quant/nf4.ts';
import { encodeModule, I32, op, V128 } from './wasm-encoder.ts';
import { BYTES_HI, BYTES_LO, get, HALVES_HI, HALVES_LO, set } from './wasm-lanes.ts';
import { WasmPool } from './wasm-pool.ts';

const PAGE = 65536;
const MAX_PAGES = 65536; // 4 GiB: wasm32's limit

// Locals: params 0..7, then the rest. x86-64 has 16 xmm registers and V8 keeps one as scratch,
// so the kernel holds only 8 vectors across iterations (4 code planes, the nibble mask, the row
// accumulator and 2 block accumulators); holding more spilled to the stack and cost ~15%.
const P = { w: 0, a: 1, xp: 2, y: 3, nStart: 4, nEnd: 5, rowBytes: 6, lut: 7 } as const;
const L = { n: 8, wp: 9, ap: 10, xb: 11, bEnd: 12, hEnd: 13, t0: 14, t1: 15, t2: 16, t3: 17, mask: 18, acc: 19, b0: 20, b1: 21, v: 22, idx: 23, p0: 24, p1: 25, p2: 26, p3: 27, ab0: 28, ab1: 29, bb0: 30, bb1: 31 } as const;
const I32_LOCALS = 6;
const V128_LOCALS = 18;

export interface GemvCodegen {
  /**
   * Relaxed SIMD: `i8x16.relaxed_swizzle` (a bare pshufb: the plain swizzle adds a saturating
   * add per lookup to zero out-of-range lanes, which nibbles never are) and
   * `f32x4.relaxed_madd` (FMA where the CPU has it, so rounding may differ from mul+add by an
   * ulp per step: still exact NF4 weights).
   */
  relaxed: boolean;
}


/** For one 16-lane code-index vector in local idx: accumulate 16 weights times x at xb+xOff. */
function lookupAndAccumulate(xOff: number, cg: GemvCodegen): number[] {
  const code: number[] = [];
  const swizzle = cg.relaxed ? op.i8x16RelaxedSwizzle : op.i8x16Swizzle;
  // Interleave each plane pair as soon as it exists, so at most two raw planes are live.
  code.push(...get(L.t0), ...get(L.idx), ...swizzle, ...set(L.p0), ...get(L.t1), ...get(L.idx), ...swizzle, ...set(L.p1));
  code.push(...get(L.p0), ...get(L.p1), ...op.i8x16Shuffle(BYTES_LO), ...set(L.ab0));
  code.push(...get(L.p0), ...get(L.p1), ...op.i8x16Shuffle(BYTES_HI), ...set(L.ab1));
  code.push(...get(L.t2), ...get(L.idx), ...swizzle, ...set(L.p2), ...get(L.t3), ...get(L.idx), ...swizzle, ...set(L.p3));
  code.push(...get(L.p2), ...get(L.p3), ...op.i8x16Shuffle(BYTES_LO), ...set(L.bb0));
  code.push(...get(L.p2), ...get(L.p3), ...op.i8x16Shuffle(BYTES_HI), ...set(L.bb1));
  const pieces: [number, number, readonly number[]][] = [[L.ab0, L.bb0, HALVES_LO], [L.ab0, L.bb0, HALVES_HI], [L.ab1, L.bb1, HALVES_LO], [L.ab1, L.bb1, HALVES_HI]];
  pieces.forEach(([a, b, lanes], k) => {
    const accLocal = k % 2 === 0 ? L.b0 : L.b1; // two chains: enough with blocks overlapping out of order
    const weightsX = [...get(a), ...get(b), ...op.i8x16Shuffle(lanes), ...get(L.xb), ...op.v128Load(xOff + 16 * k)];
    if (cg.relaxed) code.push(...weightsX, ...get(accLocal), ...op.f32x4RelaxedMadd, ...set(accLocal));
    else code.push(...get(accLocal), ...weightsX, ...op.f32x4Mul, ...op.f32x4Add, ...set(accLocal));
  });
  return code;
}

function gemvBody(cg: GemvCodegen): number[] {
  const zero = op.v128Const(new Array(16).fill(0));
  const b: number[] = [];
  [L.t0, L.t1, L.t2, L.t3].forEach((t, i) => b.push(...get(P.lut), ...op.v128Load(16 * i), ...set(t)));
  b.push(...op.i32Const(15), ...op.i8x16Splat, ...set(L.mask));
  b.push(...get(P.nStart), ...set(L.n));
  b.push(...op.block, ...get(L.n), ...get(P.nEnd), ...op.i32LtU, 0x45 /* i32.eqz */, op.brIf, 0);
  b.push(...op.loop);
  // wp = w + n * rowBytes; ap = a + n * (rowBytes / 32) * 4; bEnd = wp + rowBytes
  b.push(...get(P.w), ...get(L.n), ...get(P.rowBytes), ...op.i32Mul, ...op.i32Add, ...set(L.wp));
  b.push(...get(P.a), ...get(L.n), ...get(P.rowBytes), ...op.i32Mul, ...op.i32Const(3), ...op.i32ShrU, ...op.i32Add, ...set(L.ap));
  b.push(...get(L.wp), ...get(P.rowBytes), ...op.i32Add, ...set(L.bEnd));
  b.push(...get(P.xp), ...set(L.xb), ...zero, ...set(L.acc));
  b.push(...op.loop);
  for (const acc of [L.b0, L.b1]) b.push(...zero, ...set(acc));
  // One 16-byte vector (32 weights) per innermost iteration: TurboFan schedules loads as early
  // as its basic block allows, and a two-vector body hoisted enough x loads to spill.
  b.push(...get(L.wp), ...op.i32Const(32), ...op.i32Add, ...set(L.hEnd), ...op.loop);
  // High nibbles via a 16-bit shift + mask: V8 lowers i8x16.shr_u to the same pair but
  // rematerializes its mask constant every time.
  // The packed vector is loaded twice (high, then low nibbles): a load is cheaper than the
  // spill a long-lived register would cause.
  b.push(...get(L.wp), ...op.v128Load(0), ...op.i32Const(4), ...op.i16x8ShrU, ...get(L.mask), ...op.v128And, ...set(L.idx), ...lookupAndAccumulate(0, cg));
  b.push(...get(L.wp), ...op.v128Load(0), ...get(L.mask), ...op.v128And, ...set(L.idx), ...lookupAndAccumulate(64, cg));
  b.push(...get(L.xb), ...op.i32Const(128), ...op.i32Add, ...set(L.xb));
  b.push(...get(L.wp), ...op.i32Const(16), ...op.i32Add, op.localTee, L.wp, ...get(L.hEnd), ...op.i32Ne, op.brIf, 0, ...op.end);
  // acc += (b0 + b1) * absmax
  b.push(...get(L.b0), ...get(L.b1), ...op.f32x4Add, ...get(L.ap), ...op.f32Load(), ...op.f32x4Splat);
  b.push(...(cg.relaxed ? [...get(L.acc), ...op.f32x4RelaxedMadd] : [...op.f32x4Mul, ...get(L.acc), ...op.f32x4Add]), ...set(L.acc));
  b.push(...get(L.ap), ...op.i32Const(4), ...op.i32Add, ...set(L.ap));
  b.push(...get(L.wp), ...get(L.bEnd), ...op.i32Ne, op.brIf, 0, ...op.end);
  // y[n] = horizontal sum of acc
  b.push(...get(P.y), ...get(L.n), ...op.i32Const(2), ...op.i32Shl, ...op.i32Add);
  b.push(...get(L.acc), ...op.f32x4ExtractLane(0), ...get(L.acc), ...op.f32x4ExtractLane(1), ...op.f32Add);
  b.push(...get(L.acc), ...op.f32x4ExtractLane(2), ...get(L.acc), ...op.f32x4ExtractLane(3), ...op.f32Add, ...op.f32Add, ...op.f32Store());
  b.push(...get(L.n), ...op.i32Const(1), ...op.i32Add, op.localTee, L.n, ...get(P.nEnd), ...op.i32Ne, op.brIf, 0, ...op.end, ...op.end);
  return b;
}

/** The kernel module's bytes; exported so tests can validate both code paths. */
export function gemvModuleBytes(cg: GemvCodegen): Uint8Array<ArrayBuffer> {
  return encodeModule({ module: 'env', field: 'mem', minPages: 1, maxPages: MAX_PAGES, shared: true }, [{
    name: 'gemv',
    params: [I32, I32, I32, I32, I32, I32, I32, I32],
    results: [],
    locals: [...new Array<typeof I32>(I32_LOCALS).fill(I32), ...new Array<typeof V128>(V128_LOCALS).fill(V128)],
    body: gemvBody(cg),
  }]);
}

const modules = new Map<boolean, WebAssembly.Module>();
function gemvModule(cg: GemvCodegen): WebAssembly.Module {
  let m = modules.get(cg.relaxed);
  if (!m) {
    m = new WebAssembly.Module(gemvModuleBytes(cg));
    modules.set(cg.relaxed, m);
  }
  return m;
}

/**
 * Whether this V8 accepts relaxed SIMD. Node 20 (V8 11.3) needs --experimental-wasm-relaxed-simd
 * (`NODE_OPTIONS` or the node command line); later Node versions ship it on.
 */
export function relaxedSimdAvailable(): boolean {
  return WebAssembly.validate(gemvModuleBytes({ relaxed: true }));
}

/** The 4 byte planes of the float32 code book: plane b, lane c = byte b of NF4_CODE[c]. */
function codePlanes(): Uint8Array {
  const bytes = new Uint8Array(NF4_CODE.buffer.slice(NF4_CODE.byteOffset, NF4_CODE.byteOffset + 64));
  const planes = new Uint8Array(64);
  for (let c = 0; c < 16; c++) for (let p = 0; p < 4; p++) planes[16 * p + c] = bytes[4 * c + p] as number;
  return planes;
}

export interface Nf4Matrix {
  /** (N, K) row-major, bitsandbytes packing: (N * K) / 2 bytes. */
  packed: Uint8Array;
  /** N * K / 64 float32 block absmax values (already double-dequantized if double-quantized). */
  absmax: Float32Array;
  n: number;
  k: number;
}

/** A loaded NF4 matrix ready for repeated decode GEMVs (row-major kernel). Call close(). */
export class Nf4GemvWasm {
  private readonly f32: Float32Array;

  private constructor(
    readonly n: number,
    readonly k: number,
    private readonly pool: WasmPool,
    memory: WebAssembly.Memory,
    private readonly ptr: { w: number; a: number; xp: number; y: number; lut: number },
    readonly codegen: GemvCodegen,
  ) {
    this.f32 = new Float32Array(memory.buffer);
  }

  /** threads = total threads including this one (1 = no workers). */
  static async create(m: Nf4Matrix, threads = 1, codegen: GemvCodegen = { relaxed: false }): Promise<Nf4GemvWasm> {
    if (codegen.relaxed && !relaxedSimdAvailable()) throw new Error('relaxed SIMD is not enabled in this V8: run node with --experimental-wasm-relaxed-simd (Node 20) or use Node >= 22');
    if (m.k % NF4_BLOCK !== 0) throw new Error(`NF4 wasm GEMV needs K divisible by ${NF4_BLOCK}, got K=${m.k}`);
    if (m.packed.length !== (m.n * m.k) / 2 || m.absmax.length !== (m.n * m.k) / NF4_BLOCK) {
      throw new Error(`NF4 matrix ${m.n}x${m.k}: expected ${(m.n * m.k) / 2} packed bytes and ${(m.n * m.k) / NF4_BLOCK} absmax values, got ${m.packed.length} and ${m.absmax.length}`);
    }
    const lut = 0;
    const w = 64;
    const a = w + m.packed.length;
    const xp = a + m.absmax.byteLength;
    const y = xp + 4 * m.k;
    // maximum = initial: a shared memory reserves its maximum up front, and a model holds
    // hundreds of these matrices (the module accepts any maximum up to 4 GiB).
    const pages = Math.ceil((y + 4 * m.n) / PAGE);
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    const u8 = new Uint8Array(memory.buffer);
    u8.set(codePlanes(), lut);
    u8.set(m.packed, w);
    u8.set(new Uint8Array(m.absmax.buffer, m.absmax.byteOffset, m.absmax.byteLength), a);
    const pool = await WasmPool.create(gemvModule(codegen), memory, threads, ['gemv']);
    return new Nf4GemvWasm(m.n, m.k, pool, memory, { w, a, xp, y, lut }, codegen);
  }

  /** y = W x for one token x of length K. */
  gemv(x: Float32Array): Float32Array {
    if (x.length !== this.k) throw new Error(`NF4 GEMV: x has ${x.length} values, expected K=${this.k}`);
    const xp = this.ptr.xp >> 2;
    // Evens then odds within each 32-weight group (see the file comment).
    for (let g = 0; g < this.k; g += 32) {
      for (let t = 0; t < 16; t++) {
        this.f32[xp + g + t] = x[g + 2 * t] as number;
        this.f32[xp + g + 16 + t] = x[g + 2 * t + 1] as number;
      }
    }
    const p = this.ptr;
    const t = this.pool.threads;
    this.pool.parallel('gemv', (i) => [p.w, p.a, p.xp, p.y, Math.round((i * this.n) / t), Math.round(((i + 1) * this.n) / t), this.k / 2, p.lut]);
    return this.f32.slice(p.y >> 2, (p.y >> 2) + this.n);
  }

  get threads(): number {
    return this.pool.threads;
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
