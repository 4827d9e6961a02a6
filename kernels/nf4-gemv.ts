// The NF4 decode GEMV the harness ships: the fastest EXACT path measured by
// `llama-eval bench kernels --kernel nf4-matmul` (docs/kernels.md has the figures). The QLoRA
// runner may call this for M = 1 projections instead of ORT's MatMulBnb4, which dequantizes the
// whole matrix to float32 on every call.
//
// The default is the scalar pair-table kernel (nf4-gemv-pairlut.ts): within noise of the SIMD
// kernels while the matrix sits in L3 and the fastest of the three once it does not (8192 x
// 28672, 1 thread, 6-43% across runs), it takes any N, and it needs no relaxed SIMD (plain
// Node 20 runs it at full speed). The SIMD kernels stay selectable for comparison.
import { Nf4GemvPairLut } from './nf4-gemv-pairlut.ts';
import { Nf4GemvTiled } from './nf4-gemv-tiled.ts';
import { Nf4GemvWasm, relaxedSimdAvailable, type Nf4Matrix } from './nf4-gemv-wasm.ts';
import { availableParallelism } from 'node:os';

export type { Nf4Matrix } from './nf4-gemv-wasm.ts';

export interface Nf4Gemv {
  readonly n: number;
  readonly k: number;
  readonly threads: number;
  /** Which kernel was chosen, as the bench names it. */
  readonly variant: string;
  gemv(x: Float32Array): Float32Array;
  close(): Promise<void>;
}

export const NF4_GEMV_KERNELS = ['pairlut', 'tiled', 'rowmajor'] as const;
export type Nf4GemvKernel = (typeof NF4_GEMV_KERNELS)[number];

export interface Nf4GemvOptions {
  /** Total threads (default: all cores). */
  threads?: number;
  /** Force a kernel (default: pairlut). tiled needs N divisible by 16. */
  kernel?: Nf4GemvKernel;
}

/** Loads an (N, K) bitsandbytes-NF4 matrix into the fastest exact GEMV available here. */
export async function createNf4Gemv(m: Nf4Matrix, options: Nf4GemvOptions = {}): Promise<Nf4Gemv> {
  const threads = Math.max(1, options.threads ?? availableParallelism());
  const kernel = options.kernel ?? 'pairlut';
  if (kernel === 'pairlut') return Object.assign(await Nf4GemvPairLut.create(m, threads), { variant: `wasm-pairlut-${threads}t` });
  const relaxed = relaxedSimdAvailable();
  const simd = relaxed ? 'relaxed' : 'simd';
  if (kernel === 'tiled') return Object.assign(await Nf4GemvTiled.create(m, threads, { relaxed, subtiles: 1 }), { variant: `wasm-tiled-${simd}-${threads}t` });
  return Object.assign(await Nf4GemvWasm.create(m, threads, { relaxed }), { variant: `wasm-rowmajor-${simd}-${threads}t` });
}
