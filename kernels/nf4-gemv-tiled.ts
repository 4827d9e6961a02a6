// Tiled NF4 decode GEMV in WebAssembly SIMD: the fastest exact NF4 path measured here (see
// docs/kernels.md). Exact: every weight is its bitsandbytes NF4 code times its block absmax;
// products code[c] * x[k] are rounded to float32 once, then summed per 64-weight block and
// scaled by absmax, so only float rounding order differs from dequantize-then-MatMul.
//
// Why this shape: the row-major kernel (nf4-gemv-wasm.ts) rebuilds float32 weights from byte
// planes and multiplies by x, using 2 of V8's 15 usable xmm registers per product and spilling.
// Here x goes into the TABLE instead: for each column k, the 16 products code[c] * x[k] are
// precomputed once per call (K x 64 bytes, L2-resident) as 4 byte planes, and the weights are
// re-laid out once at load into 16-row tiles where byte (tile, j, r) is row r's code pair for
// columns 2j, 2j+1 — the same bytes as bitsandbytes', transposed. One swizzle per plane then
// yields one column's products for 16 rows, summed with plain adds: no multiplies and no x loads.
import { NF4_BLOCK, NF4_CODE } from '../runners/quant/nf4.ts';
import { tiledModuleBytes, type TiledCodegen } from './nf4-gemv-tiled-codegen.ts';
import { WasmPool } from './wasm-pool.ts';
import type { Nf4Matrix } from './nf4-gemv-wasm.ts';

const PAGE = 65536;
const MAX_PAGES = 65536;

const modules = new Map<string, WebAssembly.Module>();
function tiledModule(cg: TiledCodegen): WebAssembly.Module {
  const key = `${cg.relaxed}/${cg.subtiles}`;
  let m = modules.get(key);
  if (!m) {
    m = new WebAssembly.Module(tiledModuleBytes(cg, MAX_PAGES));
    modules.set(key, m);
  }
  return m;
}

export function tiledRelaxedAvailable(): boolean {
  return WebAssembly.validate(tiledModuleBytes({ relaxed: true, subtiles: 1 }, MAX_PAGES));
}

/** (N, K/2) packed bytes -> row tiles, (N/rows, K/2, rows). */
export function tileWeights(packed: Uint8Array, n: number, k: number, TILE_ROWS: number): Uint8Array {
  const half = k / 2;
  const out = new Uint8Array(packed.length);
  for (let row = 0; row < n; row++) {
    const base = Math.floor(row / TILE_ROWS) * half * TILE_ROWS + (row % TILE_ROWS);
    for (let j = 0; j < half; j++) out[base + j * TILE_ROWS] = packed[row * half + j] as number;
  }
  return out;
}

/** (N, K/64) absmax -> (N/rows, K/64, rows). */
export function tileAbsmax(absmax: Float32Array, n: number, k: number, TILE_ROWS: number): Float32Array {
  const blocks = k / NF4_BLOCK;
  const out = new Float32Array(absmax.length);
  for (let row = 0; row < n; row++) {
    const base = Math.floor(row / TILE_ROWS) * blocks * TILE_ROWS + (row % TILE_ROWS);
    for (let b = 0; b < blocks; b++) out[base + b * TILE_ROWS] = absmax[row * blocks + b] as number;
  }
  return out;
}

export class Nf4GemvTiled {
  private readonly f32: Float32Array;

  private constructor(
    readonly n: number,
    readonly k: number,
    readonly tileRows: number,
    private readonly pool: WasmPool,
    memory: WebAssembly.Memory,
    private readonly ptr: { code: number; tab: number; w: number; a: number; x: number; y: number },
  ) {
    this.f32 = new Float32Array(memory.buffer);
  }

  static async create(m: Nf4Matrix, threads = 1, codegen: TiledCodegen = { relaxed: false, subtiles: 2 }): Promise<Nf4GemvTiled> {
    const TILE_ROWS = 16 * codegen.subtiles;
    if (m.k % NF4_BLOCK !== 0 || m.n % TILE_ROWS !== 0) throw new Error(`tiled NF4 GEMV needs K divisible by ${NF4_BLOCK} and N by ${TILE_ROWS}, got ${m.n}x${m.k}`);
    if (m.packed.length !== (m.n * m.k) / 2 || m.absmax.length !== (m.n * m.k) / NF4_BLOCK) {
      throw new Error(`NF4 matrix ${m.n}x${m.k}: expected ${(m.n * m.k) / 2} packed bytes and ${(m.n * m.k) / NF4_BLOCK} absmax values, got ${m.packed.length} and ${m.absmax.length}`);
    }
    if (codegen.relaxed && !tiledRelaxedAvailable()) throw new Error('relaxed SIMD is not enabled in this V8: run node with --experimental-wasm-relaxed-simd (Node 20) or use Node >= 22');
    const code = 0;
    const tab = 64;
    const w = tab + 64 * m.k;
    const a = w + m.packed.length;
    const x = a + m.absmax.byteLength;
    const y = x + 4 * m.k;
    // maximum = initial: a shared memory reserves its maximum up front, and a model holds
    // hundreds of these matrices (the module accepts any maximum up to 4 GiB).
    const pages = Math.ceil((y + 4 * m.n) / PAGE);
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    const u8 = new Uint8Array(memory.buffer);
    u8.set(new Uint8Array(NF4_CODE.buffer, NF4_CODE.byteOffset, 64), code);
    u8.set(tileWeights(m.packed, m.n, m.k, TILE_ROWS), w);
    const at = tileAbsmax(m.absmax, m.n, m.k, TILE_ROWS);
    u8.set(new Uint8Array(at.buffer, at.byteOffset, at.byteLength), a);
    const pool = await WasmPool.create(tiledModule(codegen), memory, threads, ['gemv']);
    return new Nf4GemvTiled(m.n, m.k, TILE_ROWS, pool, memory, { code, tab, w, a, x, y });
  }

  /** y = W x for one token x of length K. */
  gemv(x: Float32Array): Float32Array {
    if (x.length !== this.k) throw new Error(`NF4 GEMV: x has ${x.length} values, expected K=${this.k}`);
    const p = this.ptr;
    this.f32.set(x, p.x >> 2);
    // Tables are K x 64 bytes: one thread builds them in a few microseconds.
    this.pool.call('tables', p.x, p.code, p.tab, this.k);
    const tiles = this.n / this.tileRows;
    const t = this.pool.threads;
    this.pool.parallel('gemv', (i) => [p.w, p.a, p.tab, p.y, Math.round((i * tiles) / t), Math.round(((i + 1) * tiles) / t), this.k / 2]);
    return this.f32.slice(p.y >> 2, (p.y >> 2) + this.n);
  }

  get threads(): number {
    return this.pool.threads;
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
