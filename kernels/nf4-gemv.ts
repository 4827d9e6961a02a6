// The NF4 decode GEMV the harness ships: the fastest EXACT path measured by
// `llama-eval bench kernels --kernel nf4-matmul` (docs/kernels.md has the figures). The QLoRA
// runner calls this for M = 1 projections instead of ORT's MatMulBnb4, which dequantizes the
// whole matrix to float32 on every call.
//
// The tiled kernel (x folded into per-column product tables: no multiplies, no x loads) is the
// fastest or within noise of it on every LLaMA shape measured, and it holds its speed when the
// matrix leaves the caches (8192 x 28672: 18 ms vs 25-31 ms row-major, 2 threads), so it is
// the default; relaxed SIMD is used where this V8 has it (Node >= 22, or Node 20 with
// --experimental-wasm-relaxed-simd).
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

export interface Nf4GemvOptions {
  /** Total threads (default: all cores). */
  threads?: number;
}

/** Loads an (N, K) bitsandbytes-NF4 matrix into the fastest exact GEMV available here. */
export async function createNf4Gemv(m: Nf4Matrix, options: Nf4GemvOptions = {}): Promise<Nf4Gemv> {
  const threads = Math.max(1, options.threads ?? availableParallelism());
  const relaxed = relaxedSimdAvailable();
  // Tiles are 16 rows; the row-major kernel takes odd shapes (tiny test matrices, vocab tails).
  if (m.n % 16 === 0) {
    const g = await Nf4GemvTiled.create(m, threads, { relaxed, subtiles: 1 });
    return Object.assign(g, { variant: `wasm-tiled-${relaxed ? 'relaxed' : 'simd'}-${threads}t` });
  }
  const g = await Nf4GemvWasm.create(m, threads, { relaxed });
  return Object.assign(g, { variant: `wasm-rowmajor-${relaxed ? 'relaxed' : 'simd'}-${threads}t` });
}
