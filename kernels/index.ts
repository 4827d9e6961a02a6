// Entry point of the kernel benches: pick the device, measure the machine, run each kernel.
import { assertDevice, cudaAvailable, type OrtDevice } from '../runners/ort/session.ts';
import { measureLimits, type LimitsDetail } from './machine.ts';
import { FULL_TIMING, QUICK_TIMING, reroof, type BenchContext, type BenchOutcome, type KernelRow } from './measure.ts';
import { benchLongAttention } from './long-attention.ts';
import { benchMoeDispatch } from './moe-dispatch.ts';
import { benchNf4Matmul } from './nf4-matmul.ts';

export { Nf4GemvWasm } from './nf4-gemv-wasm.ts';

export const KERNEL_BENCHES = {
  'nf4-matmul': benchNf4Matmul,
  'moe-dispatch': benchMoeDispatch,
  'long-attention': benchLongAttention,
} as const;
export type KernelName = keyof typeof KERNEL_BENCHES;

export interface BenchKernelsOptions {
  kernels: KernelName[];
  device: OrtDevice | 'auto';
  quick: boolean;
  maxMemoryBytes: number;
  log: (line: string) => void;
}

export interface BenchKernelsResult {
  limits: LimitsDetail;
  rows: KernelRow[];
  skipped: string[];
  notes: string[];
}

export async function benchKernels(o: BenchKernelsOptions): Promise<BenchKernelsResult> {
  let device: OrtDevice = o.device === 'auto' ? 'cpu' : o.device;
  // Fail before minutes of measuring, with the install command (session.ts's InputError).
  if (device === 'cuda') assertDevice('cuda');
  if (o.device === 'auto') {
    if (cudaAvailable()) device = 'cuda';
    else o.log('CUDA EP not available (CPU-only machine or provider not installed): running on CPU');
  }
  const timing = o.quick ? QUICK_TIMING : FULL_TIMING;
  // Working sets of 64-256 MiB: past every private cache, so the roof is a memory stream rather
  // than an L2 hit rate (kernels whose data stays in L3 can then exceed 1, which is the point).
  const limitsOptions = { device, timing, triadFloats: 1 << 24, gemmSize: o.quick ? 1024 : 2048, streamShape: [8192, 8192] as [number, number] };
  const before = await measureLimits(limitsOptions);
  o.log(`machine: ${before.bandwidthGBs.toFixed(1)} GB/s, ${before.peakGflops.toFixed(1)} GFLOP/s fp32 (${device})`);
  const ctx: BenchContext = { limits: before, timing, device, quick: o.quick, log: o.log, maxMemoryBytes: o.maxMemoryBytes };
  const out: BenchOutcome = { rows: [], skipped: [], notes: [] };
  for (const name of o.kernels) {
    const r = await KERNEL_BENCHES[name](ctx);
    out.rows.push(...r.rows);
    out.skipped.push(...r.skipped);
    out.notes.push(...r.notes);
  }
  // Measured again at the end: a shared machine can be slowed for a while by a neighbour, and
  // the machine's limit is the best it showed, not an unlucky sample.
  const after = await measureLimits(limitsOptions);
  const limits = {
    ...after,
    bandwidthGBs: Math.max(before.bandwidthGBs, after.bandwidthGBs),
    peakGflops: Math.max(before.peakGflops, after.peakGflops),
    triadJsGBs: Math.max(before.triadJsGBs, after.triadJsGBs),
    triadOrtGBs: Math.max(before.triadOrtGBs, after.triadOrtGBs),
    gemvReadGBs: Math.max(before.gemvReadGBs, after.gemvReadGBs),
  };
  out.notes.unshift(`machine limits before/after the kernels: ${before.bandwidthGBs.toFixed(1)}/${after.bandwidthGBs.toFixed(1)} GB/s, ${before.peakGflops.toFixed(1)}/${after.peakGflops.toFixed(1)} GFLOP/s; rows use the larger`);
  return { limits, rows: out.rows.map((r) => reroof(r, limits)), skipped: [...new Set(out.skipped)], notes: [...new Set(out.notes)] };
}
