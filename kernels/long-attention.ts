// long-attention: LLaMA attention (GQA, 32 query / 8 KV heads, head dim 128) from 512 to 32k
// positions, prefill and decode-with-cache, fused contrib ops vs opset-23 Attention vs the
// composed MatMul-Softmax-MatMul, plus LLaMA 4's chunked local attention (8k chunks). Each
// series stops cleanly before its estimated peak memory passes --max-memory, and each gets a
// fitted scaling exponent (time ~ S^p: p ≈ 2 for prefill, 1 for decode).
import { OrtSession, type Feed } from '../runners/ort/session.ts';
import { attentionMask, attentionReference, composedAttentionGraph, gqaGraph, onnxAttentionGraph, type AttnShape } from './attention-graphs.ts';
import { assertClose, makeRow, seededFloats, timeIt, type BenchContext, type BenchOutcome, type KernelRow } from './measure.ts';

export const LLAMA_ATTN: AttnShape = { qHeads: 32, kvHeads: 8, headDim: 128 };
export const LLAMA4_CHUNK = 8192;
const FULL_LENGTHS = [512, 1024, 2048, 4096, 8192, 16384, 32768];
const QUICK_LENGTHS = [256, 512];
const CHECK_LENGTH = 48;

type Mode = 'prefill' | 'decode';
interface AttnVariant {
  name: string;
  graph: () => Uint8Array;
  feeds: (s: number, t: number, q: Float32Array, k: Float32Array, v: Float32Array) => Record<string, Feed>;
  /** Peak bytes beyond inputs: the (Hq, S, T) scores for materializing variants. */
  extraBytes: (s: number, t: number) => number;
  chunk?: number;
}

const a = LLAMA_ATTN;
const dims = (len: number, heads: number) => [1, len, heads * a.headDim];
const maskFeed = (s: number, t: number, chunk = 0): Feed => ({ data: attentionMask(s, t, chunk), dims: [s, t] });
const scoresBytes = (s: number, t: number) => 3 * 4 * a.qHeads * s * t + 8 * s * t;

/** Splits [T positions of K] into the cache (first T - S) and the new S positions, BNSH cache. */
function toCache(x: Float32Array, past: number): Float32Array {
  const d = a.headDim;
  const out = new Float32Array(past * a.kvHeads * d);
  for (let p = 0; p < past; p++) for (let h = 0; h < a.kvHeads; h++) out.set(x.subarray((p * a.kvHeads + h) * d, (p * a.kvHeads + h + 1) * d), (h * past + p) * d);
  return out;
}

const VARIANTS: AttnVariant[] = [
  {
    name: 'ort-groupqueryattention',
    graph: () => gqaGraph(a),
    feeds: (s, t, q, k, v) => {
      const past = t - s;
      const kvw = a.kvHeads * a.headDim;
      return {
        Q: { data: q, dims: dims(s, a.qHeads) },
        K: { data: k.slice(past * kvw), dims: dims(s, a.kvHeads) },
        V: { data: v.slice(past * kvw), dims: dims(s, a.kvHeads) },
        past_key: { data: toCache(k, past), dims: [1, a.kvHeads, past, a.headDim] },
        past_value: { data: toCache(v, past), dims: [1, a.kvHeads, past, a.headDim] },
        seqlens_k: { data: Int32Array.of(t - 1), dims: [1] },
        total_sequence_length: { data: Int32Array.of(t), dims: [] },
      };
    },
    extraBytes: (s, t) => 4 * 2 * a.kvHeads * t * a.headDim + 4 * a.qHeads * s * Math.min(t, 4096),
  },
  {
    name: 'onnx-attention-opset23',
    graph: () => onnxAttentionGraph(a),
    feeds: (s, t, q, k, v) => ({ Q: { data: q, dims: dims(s, a.qHeads) }, K: { data: k, dims: dims(t, a.kvHeads) }, V: { data: v, dims: dims(t, a.kvHeads) }, mask: maskFeed(s, t) }),
    extraBytes: scoresBytes,
  },
  {
    name: 'composed-matmul-softmax',
    graph: () => composedAttentionGraph(a),
    feeds: (s, t, q, k, v) => ({ Q: { data: q, dims: dims(s, a.qHeads) }, K: { data: k, dims: dims(t, a.kvHeads) }, V: { data: v, dims: dims(t, a.kvHeads) }, mask: maskFeed(s, t) }),
    extraBytes: scoresBytes,
  },
  {
    name: 'composed-chunked-8k',
    chunk: LLAMA4_CHUNK,
    graph: () => composedAttentionGraph(a),
    feeds: (s, t, q, k, v) => ({ Q: { data: q, dims: dims(s, a.qHeads) }, K: { data: k, dims: dims(t, a.kvHeads) }, V: { data: v, dims: dims(t, a.kvHeads) }, mask: maskFeed(s, t, LLAMA4_CHUNK) }),
    extraBytes: scoresBytes,
  },
];

/** Least-squares slope of log(ms) on log(length). */
export function scalingExponent(points: readonly [number, number][]): number | null {
  if (points.length < 2) return null;
  const xs = points.map(([x]) => Math.log(x));
  const ys = points.map(([, y]) => Math.log(y));
  const mx = xs.reduce((p, c) => p + c, 0) / xs.length;
  const my = ys.reduce((p, c) => p + c, 0) / ys.length;
  let num = 0;
  let den = 0;
  xs.forEach((x, i) => {
    num += (x - mx) * ((ys[i] as number) - my);
    den += (x - mx) ** 2;
  });
  return den === 0 ? null : num / den;
}

function cost(mode: Mode, s: number, t: number): { flops: number; bytes: number } {
  // Causal prefill does half the S x T dot products; QK^T and PV each 2*D flops per pair.
  const pairs = mode === 'prefill' ? (s * (t + 1)) / 2 : s * t;
  const flops = 4 * a.qHeads * a.headDim * pairs;
  const bytes = 4 * a.headDim * (2 * a.qHeads * s + 2 * a.kvHeads * t);
  return { flops, bytes };
}

/** Times one length of a series; the row's note carries the estimated peak memory. */
async function timePoint(ctx: BenchContext, sess: OrtSession, variant: AttnVariant, mode: Mode, s: number, t: number, err: number, peak: number): Promise<KernelRow> {
  const q = seededFloats(s * a.qHeads * a.headDim, 4);
  const k = seededFloats(t * a.kvHeads * a.headDim, 5);
  const v = seededFloats(t * a.kvHeads * a.headDim, 6);
  const feeds = sess.prepare(variant.feeds(s, t, q, k, v));
  const timing = await timeIt(`${variant.name} ${mode} ${t}`, () => sess.runPrepared(feeds), ctx.timing);
  return makeRow({
    kernel: 'long-attention', variant: `${variant.name}-${mode}`, backend: 'ort', device: ctx.device,
    shape: `${s}x${t}x${a.qHeads}x${a.kvHeads}x${a.headDim}`, dtype: 'fp32', max_abs_err: err, exact: true,
    note: `estimated peak ${(peak / 2 ** 20).toFixed(1)} MiB`,
  }, timing, cost(mode, s, t), ctx.limits);
}

export async function benchLongAttention(ctx: BenchContext): Promise<BenchOutcome> {
  const rows: KernelRow[] = [];
  const skipped: string[] = [];
  const notes: string[] = [];
  const lengths = ctx.quick ? QUICK_LENGTHS : FULL_LENGTHS;
  const modes: Mode[] = ['prefill', 'decode'];
  for (const variant of VARIANTS) {
    if (ctx.quick && variant.chunk) continue; // chunking only differs from causal past 8k
    let session: OrtSession | null = null;
    try {
      session = await OrtSession.create(variant.graph(), { device: ctx.device });
      const sess = session;
      for (const mode of modes) {
        // Check on a short sequence first: the graphs have symbolic lengths, so the same session
        // that is timed is the one checked.
        const cs = mode === 'prefill' ? CHECK_LENGTH : 1;
        const cq = seededFloats(cs * a.qHeads * a.headDim, 1);
        const ck = seededFloats(CHECK_LENGTH * a.kvHeads * a.headDim, 2);
        const cv = seededFloats(CHECK_LENGTH * a.kvHeads * a.headDim, 3);
        const got = (await sess.run(variant.feeds(cs, CHECK_LENGTH, cq, ck, cv))).Y?.data as Float32Array;
        const err = assertClose(`long-attention ${variant.name} ${mode}`, got, attentionReference(cq, ck, cv, cs, CHECK_LENGTH, a, variant.chunk ?? 0), 1e-4);
        const series: [number, number][] = [];
        for (const t of lengths) {
          const s = mode === 'prefill' ? t : 1;
          const peak = 4 * a.headDim * (a.qHeads * s + 2 * a.kvHeads * t) + variant.extraBytes(s, t);
          if (peak > ctx.maxMemoryBytes) {
            skipped.push(`long-attention ${variant.name} ${mode} from T=${t}: estimated ${(peak / 2 ** 30).toFixed(2)} GiB > --max-memory ${(ctx.maxMemoryBytes / 2 ** 30).toFixed(2)} GiB`);
            break;
          }
          const row = await timePoint(ctx, sess, variant, mode, s, t, err, peak).catch((e: unknown) => {
            // An allocation or runtime failure ends this series, not the bench: the points
            // already timed keep their fit.
            skipped.push(`long-attention ${variant.name} ${mode} from T=${t}: ${(e as Error).message.split('\n')[0]}`);
            return null;
          });
          if (!row) break;
          series.push([t, row.median_ms]);
          rows.push(row);
          ctx.log(`long-attention ${row.variant.padEnd(36)} T=${String(t).padEnd(6)} ${row.median_ms.toFixed(3)} ms  ${row.gflops.toFixed(1)} GFLOP/s  ${(100 * row.roofline_fraction).toFixed(1)}% of ${row.bound}`);
        }
        const p = scalingExponent(series);
        const over = series.map(([x]) => x).join(',');
        notes.push(p === null
          ? `long-attention ${variant.name}-${mode}: no scaling exponent (${series.length} length${series.length === 1 ? '' : 's'} timed${over ? `: T=${over}` : ''}; a fit needs 2)`
          : `long-attention ${variant.name}-${mode}: time ~ T^${p.toFixed(2)} over T=${over}`);
      }
    } catch (e) {
      if ((e as Error).message.includes('numeric check failed')) throw e;
      skipped.push(`long-attention ${variant.name}: ${(e as Error).message.split('\n')[0]}`);
    } finally {
      await session?.close();
    }
  }
  return { rows, skipped, notes };
}
