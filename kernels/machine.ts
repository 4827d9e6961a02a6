// The machine's own limits, measured in the same run as the kernels so roofline fractions
// compare like with like (a laptop on battery and a server differ more than kernels do).
// Bandwidth is STREAM's triad (a = b + s*c: 2 reads + 1 write per element), measured both in
// plain typed arrays (one thread) and through ORT (Mul + Add over all intra-op threads); the
// larger is the roof, together with ORT's fp32 GEMV weight stream (a read-only STREAM kernel:
// a single JS thread and ORT's two-op triad both under-read a multi-core memory system, and a
// roof below what a real kernel reaches would report fractions above 1). Peak flops is ORT's fp32 MatMul on a square GEMM large enough to be
// compute bound.
import { OnnxGraphBuilder } from '../runners/ort/onnx-builder.ts';
import { OrtSession, type OrtDevice } from '../runners/ort/session.ts';
import { seededFloats, timeIt, type MachineLimits, type TimeOptions } from './measure.ts';

export interface LimitsOptions {
  device: OrtDevice;
  timing: TimeOptions;
  /** Triad array length in floats (per array). */
  triadFloats: number;
  /** Square GEMM size. */
  gemmSize: number;
  /** fp32 GEMV stream: K x N weight (256 MiB at 8192 x 8192, past what a kernel here touches). */
  streamShape: [number, number];
}

export interface LimitsDetail extends MachineLimits {
  triadJsGBs: number;
  triadOrtGBs: number;
  gemvReadGBs: number;
  gemmShape: string;
}

async function triadOrt(device: OrtDevice, n: number, timing: TimeOptions): Promise<number> {
  const g = new OnnxGraphBuilder('triad');
  g.input('b', 'float32', [n]);
  g.input('c', 'float32', [n]);
  g.initializer('s', Float32Array.of(3), []);
  g.node('Add', ['b', g.op('Mul', ['c', 's'])], ['a']);
  g.output('a', 'float32', [n]);
  const s = await OrtSession.create(g.toBytes(), { device });
  try {
    const feeds = s.prepare({ b: { data: seededFloats(n, 1), dims: [n] }, c: { data: seededFloats(n, 2), dims: [n] } });
    const t = await timeIt('triad-ort', () => s.runPrepared(feeds), timing);
    // Mul + Add as two ops moves 5 arrays (c, tmp, tmp, b, a) though STREAM counts 3; count
    // what the hardware moved so the figure is a bandwidth, not an optimistic triad score.
    return (5 * 4 * n) / (t.median_ms / 1e3) / 1e9;
  } finally {
    await s.close();
  }
}

async function triadJs(n: number, timing: TimeOptions): Promise<number> {
  const a = new Float32Array(n);
  const b = seededFloats(n, 1);
  const c = seededFloats(n, 2);
  const t = await timeIt('triad-js', () => {
    for (let i = 0; i < n; i++) a[i] = (b[i] as number) + 3 * (c[i] as number);
  }, timing);
  return (3 * 4 * n) / (t.median_ms / 1e3) / 1e9;
}

/** Weight-streaming bandwidth of ORT's fp32 GEMV (MatMul 1xKxN): STREAM's "read" kernel. */
async function gemvStream(device: OrtDevice, k: number, n: number, timing: TimeOptions): Promise<number> {
  const g = new OnnxGraphBuilder('gemv_stream');
  g.input('A', 'float32', [1, k]);
  g.initializer('B', seededFloats(k * n, 5), [k, n]);
  g.node('MatMul', ['A', 'B'], ['Y']);
  g.output('Y', 'float32', [1, n]);
  const s = await OrtSession.create(g.toBytes(), { device });
  try {
    const feeds = s.prepare({ A: { data: seededFloats(k, 6), dims: [1, k] } });
    const t = await timeIt('gemv-stream', () => s.runPrepared(feeds), timing);
    return (4 * (k * n + k + n)) / (t.median_ms / 1e3) / 1e9;
  } finally {
    await s.close();
  }
}

async function gemmPeak(device: OrtDevice, size: number, timing: TimeOptions): Promise<number> {
  const g = new OnnxGraphBuilder('gemm');
  g.input('A', 'float32', [size, size]);
  g.initializer('B', seededFloats(size * size, 3), [size, size]);
  g.node('MatMul', ['A', 'B'], ['Y']);
  g.output('Y', 'float32', [size, size]);
  const s = await OrtSession.create(g.toBytes(), { device });
  try {
    const feeds = s.prepare({ A: { data: seededFloats(size * size, 4), dims: [size, size] } });
    const t = await timeIt('gemm-peak', () => s.runPrepared(feeds), timing);
    return (2 * size ** 3) / (t.median_ms / 1e3) / 1e9;
  } finally {
    await s.close();
  }
}

export async function measureLimits(o: LimitsOptions): Promise<LimitsDetail> {
  const triadJsGBs = o.device === 'cpu' ? await triadJs(o.triadFloats, o.timing) : 0;
  const triadOrtGBs = await triadOrt(o.device, o.triadFloats, o.timing);
  const gemvReadGBs = await gemvStream(o.device, o.streamShape[0], o.streamShape[1], o.timing);
  const peakGflops = await gemmPeak(o.device, o.gemmSize, o.timing);
  return {
    bandwidthGBs: Math.max(triadJsGBs, triadOrtGBs, gemvReadGBs),
    peakGflops,
    device: o.device,
    backend: 'ort',
    triadJsGBs,
    triadOrtGBs,
    gemvReadGBs,
    gemmShape: `${o.gemmSize}x${o.gemmSize}x${o.gemmSize}`,
  };
}
