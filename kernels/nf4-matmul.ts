// nf4-matmul: every way the harness can multiply by an NF4 weight, on LLaMA projection shapes,
// at decode (M = 1, a GEMV: memory bound, so judged against bandwidth on the bytes the NF4
// format must read) and prefill (M = 128/512). Each variant is checked against a float64
// reference over the bitsandbytes dequantization before it is timed.
import { NF4_BLOCK, nf4Dequantize } from '../runners/quant/nf4.ts';
import { OrtSession, type Feed, type SessionOptions } from '../runners/ort/session.ts';
import { fp32MatMulGraph, gatherDequantGraph, int4Dequantize, matMulBnb4Graph, matMulNBitsGraph, type Int4Weights, type Nf4Weights } from './nf4-graphs.ts';
import { Nf4GemvWasm, relaxedSimdAvailable } from './nf4-gemv-wasm.ts';
import { Nf4GemvTiled } from './nf4-gemv-tiled.ts';
import { Nf4GemvJs } from './nf4-gemv-js.ts';
import { Nf4GemvPairLut } from './nf4-gemv-pairlut.ts';
import { assertClose, makeRow, seededFloats, timeIt, type BenchContext, type BenchOutcome, type KernelCost, type KernelRow } from './measure.ts';

/**
 * LLaMA projection shapes (K, N): 7B q/o (4096, 4096) and up/gate (4096, 11008), 13B up
 * (5120, 13824), 70B up (8192, 28672), and 70B q/o (8192, 8192), the reference shape.
 */
export const NF4_FULL_SHAPES: [number, number][] = [[4096, 4096], [4096, 11008], [5120, 13824], [8192, 28672], [8192, 8192]];
export const NF4_QUICK_SHAPES: [number, number][] = [[4096, 4096], [8192, 8192]];
export const NF4_FULL_M = [1, 128, 512];
export const NF4_QUICK_M = [1];

/** A random but valid NF4 matrix: any byte pattern is a code pair; absmax like real weights. */
export function randomNf4(n: number, k: number, seed: number): Nf4Weights {
  const packed = new Uint8Array((n * k) / 2);
  const r = seededFloats(packed.length >> 2, seed);
  const words = new Uint32Array(packed.buffer);
  for (let i = 0; i < words.length; i++) words[i] = Math.floor(((r[i] as number) + 1) * 2147483648) >>> 0;
  const absmax = seededFloats((n * k) / NF4_BLOCK, seed + 1, 0.04).map((v) => 0.06 + v);
  return { n, k, packed, absmax, blockSize: NF4_BLOCK };
}

function randomInt4(n: number, k: number, seed: number): Int4Weights {
  // A loop, not Uint8Array.from(typedArray, fn): V8 builds that through a JS array, which for
  // 8192 x 28672 weights runs out of heap.
  const r = seededFloats((n * k) / 2, seed);
  const packed = new Uint8Array(r.length);
  for (let i = 0; i < r.length; i++) packed[i] = Math.floor(((r[i] as number) + 1) * 128) & 0xff;
  return { n, k, packed, scales: seededFloats((n * k) / 64, seed + 1, 0.004).map((v) => 0.009 + v), blockSize: 64 };
}

/** Float64 reference rows y[m] = W x[m] for the checked rows, and a tolerance for float32 sums. */
function referenceRows(wNK: Float32Array, n: number, k: number, a: Float32Array, rows: number[], relTol = 3e-5): { want: Float64Array[]; tol: number } {
  let scale = 0;
  const want = rows.map((m) => {
    const y = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      let acc = 0;
      let mag = 0;
      for (let i = 0; i < k; i++) {
        const p = (a[m * k + i] as number) * (wNK[j * k + i] as number);
        acc += p;
        mag += Math.abs(p);
      }
      y[j] = acc;
      scale = Math.max(scale, mag);
    }
    return y;
  });
  // float32 accumulation error grows like sqrt(K) * eps * sum|x w|; 3e-5 covers K <= 32k
  // with margin while a layout or nibble-order bug gives errors of order sum|x w| itself.
  return { want, tol: relTol * scale };
}

function transposeNK(w: Float32Array, n: number, k: number): Float32Array {
  const out = new Float32Array(n * k);
  for (let j = 0; j < n; j++) for (let i = 0; i < k; i++) out[i * n + j] = w[j * k + i] as number;
  return out;
}

function nf4Bytes(n: number, k: number): number {
  return (n * k) / 2 + ((n * k) / NF4_BLOCK) * 4;
}

interface Variant {
  name: string;
  exact: boolean;
  /** Bytes of weight storage the variant must read at minimum (its format's size). */
  weightBytes: number;
  decodeOnly?: boolean;
  fullOnly?: boolean;
  /** In --quick, only for matrices up to this many weights (slow variants). */
  quickMaxWeights?: number;
  /** Needs relaxed SIMD in this V8 (skipped, with the reason, where it is not enabled). */
  needsRelaxed?: boolean;
  note?: string;
  /** Returns a runner that computes Y (M, N) for A (M, K). */
  make: () => Promise<{ run: (a: Float32Array, m: number) => Promise<Float32Array>; close: () => Promise<void> }>;
  /** Allowed error as a fraction of max Sum|x w| when the variant approximates by design. */
  tolerance?: number;
  /** The reference weight, (N, K), if not the NF4 one (computed on first use). */
  reference?: () => Float32Array;
}

/**
 * The WebAssembly GEMVs: row-major (byte-plane weights times x) and tiled (x in the tables),
 * each with plain or relaxed SIMD, and the scalar pair-table kernel, on 1 thread and on 2.
 * Quick mode keeps the 2-thread rows and the tiled 1-thread row.
 */
function wasmVariants(w: Nf4Weights, n: number, k: number): Variant[] {
  const out: Variant[] = [{
    name: 'js-pair-lut-1t', exact: true, weightBytes: nf4Bytes(n, k), decodeOnly: true, quickMaxWeights: 4096 * 4096,
    make: async () => {
      const g = new Nf4GemvJs({ packed: w.packed, absmax: w.absmax, n, k });
      return { run: async (a: Float32Array) => g.gemv(a), close: () => g.close() };
    },
  }];
  for (const layout of ['rowmajor', 'tiled'] as const) {
    for (const relaxed of [false, true]) {
      for (const threads of [1, 2]) {
        out.push({
          name: `wasm-${layout}-${relaxed ? 'relaxed' : 'simd'}-${threads}t`, exact: true, weightBytes: nf4Bytes(n, k), decodeOnly: true,
          fullOnly: threads === 1 && (layout === 'rowmajor' || relaxed),
          needsRelaxed: relaxed,
          make: async () => {
            const m = { packed: w.packed, absmax: w.absmax, n, k };
            const g = layout === 'tiled' ? await Nf4GemvTiled.create(m, threads, { relaxed, subtiles: 1 }) : await Nf4GemvWasm.create(m, threads, { relaxed });
            return { run: async (a: Float32Array) => g.gemv(a), close: () => g.close() };
          },
        });
      }
    }
  }
  // Scalar pair tables: no SIMD lookups at all (see nf4-gemv-pairlut.ts); any N.
  for (const threads of [1, 2]) {
    out.push({
      name: `wasm-pairlut-${threads}t`, exact: true, weightBytes: nf4Bytes(n, k), decodeOnly: true,
      make: async () => {
        const g = await Nf4GemvPairLut.create({ packed: w.packed, absmax: w.absmax, n, k }, threads);
        return { run: async (a: Float32Array) => g.gemv(a), close: () => g.close() };
      },
    });
  }
  return out;
}

async function ortVariant(model: Uint8Array, k: number, options: SessionOptions, extra: Record<string, Feed> = {}) {
  const s = await OrtSession.create(model, options);
  return {
    run: async (a: Float32Array, m: number) => (await s.run({ A: { data: a, dims: [m, k] }, ...extra })).Y?.data as Float32Array,
    close: () => s.close(),
  };
}

export async function benchNf4Matmul(ctx: BenchContext): Promise<BenchOutcome> {
  const rows: KernelRow[] = [];
  const skipped: string[] = [];
  const notes: string[] = [];
  const shapes = ctx.quick ? NF4_QUICK_SHAPES : NF4_FULL_SHAPES;
  const ms = ctx.quick ? NF4_QUICK_M : NF4_FULL_M;
  const device = ctx.device;
  for (const [k, n] of shapes) {
    const w = randomNf4(n, k, 11);
    const wNK = nf4Dequantize({ packed: w.packed, absmax: w.absmax, n: n * k, blockSize: w.blockSize });
    const int4 = randomInt4(n, k, 21);
    let int4Ref: Float32Array | null = null;
    const int4Reference = () => (int4Ref ??= int4Dequantize(int4));
    const variants: Variant[] = [
      { name: 'ort-matmul-fp32', exact: true, weightBytes: 4 * n * k, note: 'dequantized fp32 weight', make: () => ortVariant(fp32MatMulGraph(transposeNK(wNK, n, k), k, n), k, { device }) },
      { name: 'ort-matmulbnb4', exact: true, weightBytes: nf4Bytes(n, k), make: () => ortVariant(matMulBnb4Graph(w), k, { device }) },
      { name: 'ort-matmulbnb4-1thread', exact: true, weightBytes: nf4Bytes(n, k), fullOnly: true, make: () => ortVariant(matMulBnb4Graph(w), k, { device, intraOpThreads: 1 }) },
      { name: 'ort-matmulbnb4-optdisabled', exact: true, weightBytes: nf4Bytes(n, k), fullOnly: true, make: () => ortVariant(matMulBnb4Graph(w), k, { device, graphOptimization: 'disabled' }) },
      { name: 'ort-gather-dequant-matmul', exact: true, weightBytes: nf4Bytes(n, k), quickMaxWeights: 4096 * 4096, make: () => ortVariant(gatherDequantGraph(w), k, { device }, { packed: { data: w.packed, dims: [(n * k) / 2, 1] }, absmax: { data: w.absmax, dims: [w.absmax.length, 1] } }) },
      { name: 'ort-matmulnbits-int4', exact: false, weightBytes: nf4Bytes(n, k), note: 'int4 weights, not NF4: speed reference', reference: int4Reference, make: () => ortVariant(matMulNBitsGraph(int4), k, { device }) },
      { name: 'ort-matmulnbits-int4-acc4', exact: false, weightBytes: nf4Bytes(n, k), fullOnly: true, note: 'int4 weights, int8-quantized activations', reference: int4Reference,
        // accuracy_level 4 rounds A to int8 per block: each term may be off by up to half an
        // int8 step (1/254 of the block's max |a|), so the bound is Sum|x w| / 127 with margin.
        tolerance: 1 / 64, make: () => ortVariant(matMulNBitsGraph(int4, 4), k, { device }) },
      ...wasmVariants(w, n, k),
    ];
    for (const v of variants) {
      if (ctx.quick && (v.fullOnly || n * k > (v.quickMaxWeights ?? Infinity))) continue;
      if (device === 'cuda' && v.name.startsWith('wasm')) continue;
      if (v.needsRelaxed && !relaxedSimdAvailable()) {
        skipped.push(`nf4-matmul ${v.name} ${k}x${n}: relaxed SIMD not enabled in this V8 (run node with --experimental-wasm-relaxed-simd, or Node >= 22)`);
        continue;
      }
      let runner: Awaited<ReturnType<Variant['make']>> | null = null;
      try {
        runner = await v.make();
        for (const m of ms) {
          if (v.decodeOnly && m !== 1) continue;
          const a = seededFloats(m * k, 31 + m);
          const checkRows = m === 1 ? [0] : [0, m - 1];
          const ref = referenceRows(v.reference?.() ?? wNK, n, k, a, checkRows, v.tolerance);
          const y = await runner.run(a, m);
          let err = 0;
          checkRows.forEach((row, i) => {
            err = Math.max(err, assertClose(`nf4-matmul ${v.name} ${m}x${k}x${n}`, y.subarray(row * n, (row + 1) * n), ref.want[i] as Float64Array, ref.tol));
          });
          const r = runner;
          const t = await timeIt(`${v.name} ${m}x${k}x${n}`, () => r.run(a, m), ctx.timing);
          const cost: KernelCost = { flops: 2 * m * n * k, bytes: v.weightBytes + 4 * m * (k + n) };
          const row = makeRow({
            kernel: 'nf4-matmul', variant: v.name, backend: v.name.startsWith('wasm') ? 'wasm' : 'ort', device,
            shape: `${m}x${k}x${n}`, dtype: v.name.includes('int4') ? 'int4' : v.name.includes('fp32') ? 'fp32' : 'nf4',
            max_abs_err: err, exact: v.exact, ...(v.note ? { note: v.note } : {}),
          }, t, cost, ctx.limits);
          rows.push(row);
          ctx.log(`nf4-matmul ${v.name.padEnd(28)} ${row.shape.padEnd(16)} ${row.median_ms.toFixed(3)} ms  ${row.gbps.toFixed(2)} GB/s  ${(100 * row.roofline_fraction).toFixed(1)}% of ${row.bound}`);
        }
      } catch (e) {
        skipped.push(`nf4-matmul ${v.name} ${k}x${n}: ${(e as Error).message.split('\n')[0]}`);
        if ((e as Error).message.includes('numeric check failed')) throw e;
      } finally {
        await runner?.close();
      }
    }
  }
  // Per shape: a 4096^2 matrix stays in this VM's L3 and always has the lowest time, so the
  // best row across shapes would say little about decode out of cache.
  const decode = rows.filter((r) => r.shape.startsWith('1x') && r.exact && r.dtype === 'nf4');
  for (const shape of [...new Set(decode.map((r) => r.shape))]) {
    const best = decode.filter((r) => r.shape === shape).reduce((b, r) => (r.median_ms < b.median_ms ? r : b));
    notes.push(`fastest exact NF4 decode GEMV at ${shape}: ${best.variant}, ${best.median_ms.toFixed(2)} ms, ${(100 * best.roofline_fraction).toFixed(1)}% of measured bandwidth`);
  }
  return { rows, skipped, notes };
}
