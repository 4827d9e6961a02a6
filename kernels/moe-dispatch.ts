// moe-dispatch: LLaMA 4's MoE layer scaled down (hidden 512, expert FFN 1024; Scout/Maverick
// are 5120/8192 with 16/128 experts): sigmoid-gated top-1 routing plus an always-on shared
// expert, y = shared(x) + expert_e(x * sigmoid(logit_e)), e = argmax(x Wr). Dense all-experts
// (every expert on every token, then mask) vs a composed gather graph (each token gathers its
// expert's weights) vs ORT's fused com.microsoft MoE op vs its QMoE with int4 experts
// (moe-qmoe.ts, checked against its own dequantized experts). Routing imbalance (busiest expert / mean) is reported per token count: it
// is the slowdown of any expert-parallel or grouped dispatch relative to perfect balance.
import { OnnxGraphBuilder } from '../runners/ort/onnx-builder.ts';
import { OrtSession } from '../runners/ort/session.ts';
import { assertClose, makeRow, seededFloats, timeIt, type BenchContext, type BenchOutcome, type KernelRow } from './measure.ts';
import { QMOE_BLOCK, qmoeGraph, qmoeWeights, type QmoeWeights } from './moe-qmoe.ts';

export const HIDDEN = 512;
export const FFN = 1024;
const FULL_EXPERTS = [16, 128];
const QUICK_EXPERTS = [16];
const FULL_TOKENS = [1, 16, 128, 1024, 4096];
const QUICK_TOKENS = [1, 64];

export interface MoeWeights {
  e: number;
  router: Float32Array; // (d, E)
  w1: Float32Array; // (E, d, f)
  w2: Float32Array; // (E, f, d)
  s1: Float32Array; // (d, f)
  s2: Float32Array; // (f, d)
}

export function moeWeights(e: number): MoeWeights {
  const s = 1 / Math.sqrt(HIDDEN);
  return {
    e,
    router: seededFloats(HIDDEN * e, 1, s),
    w1: seededFloats(e * HIDDEN * FFN, 2, s),
    w2: seededFloats(e * FFN * HIDDEN, 3, 1 / Math.sqrt(FFN)),
    s1: seededFloats(HIDDEN * FFN, 4, s),
    s2: seededFloats(FFN * HIDDEN, 5, 1 / Math.sqrt(FFN)),
  };
}

function common(g: OnnxGraphBuilder, w: MoeWeights, experts = true) {
  g.input('X', 'float32', ['T', HIDDEN]);
  g.initializer('router', w.router, [HIDDEN, w.e]);
  if (experts) {
    g.initializer('w1', w.w1, [w.e, HIDDEN, FFN]);
    g.initializer('w2', w.w2, [w.e, FFN, HIDDEN]);
  }
  g.initializer('s1', w.s1, [HIDDEN, FFN]);
  g.initializer('s2', w.s2, [FFN, HIDDEN]);
  const silu = (x: string) => g.op('Mul', [x, g.op('Sigmoid', [x])]);
  const logits = g.op('MatMul', ['X', 'router']);
  const top = g.op('ReduceMax', [logits, g.ints('ax1', [1])], { attrs: { keepdims: 1 } });
  const routedIn = g.op('Mul', ['X', g.op('Sigmoid', [top])]);
  const shared = g.op('MatMul', [silu(g.op('MatMul', ['X', 's1'])), 's2']);
  return { silu, logits, top, routedIn, shared };
}

/** Every expert on every token: E times the routed flops, but plain batched MatMuls. */
export function denseGraph(w: MoeWeights): Uint8Array {
  const g = new OnnxGraphBuilder('moe_dense');
  const { silu, logits, top, routedIn, shared } = common(g, w);
  const h = silu(g.op('MatMul', [g.op('Unsqueeze', [routedIn, g.ints('ax0', [0])]), 'w1'])); // (E, T, f)
  const o = g.op('MatMul', [h, 'w2']); // (E, T, d)
  const mask = g.op('Unsqueeze', [g.op('Transpose', [g.op('Cast', [g.op('Equal', [logits, top])], { attrs: { to: 1 } })], { attrs: { perm: [1, 0] } }), g.ints('ax2', [2])]);
  const routed = g.op('ReduceSum', [g.op('Mul', [o, mask]), g.ints('ax0r', [0])], { attrs: { keepdims: 0 } });
  g.node('Add', [routed, shared], ['Y']);
  g.output('Y', 'float32', ['T', HIDDEN]);
  return g.toBytes();
}

/** Each token gathers its expert's two matrices: reads only the experts in use at decode. */
export function gatherGraph(w: MoeWeights): Uint8Array {
  const g = new OnnxGraphBuilder('moe_gather');
  const { silu, logits, routedIn, shared } = common(g, w);
  const idx = g.op('ArgMax', [logits], { attrs: { axis: 1, keepdims: 0 } });
  const z = g.op('Unsqueeze', [routedIn, g.ints('ax1u', [1])]); // (T, 1, d)
  const h = silu(g.op('MatMul', [z, g.op('Gather', ['w1', idx], { attrs: { axis: 0 } })])); // (T, 1, f)
  const o = g.op('MatMul', [h, g.op('Gather', ['w2', idx], { attrs: { axis: 0 } })]); // (T, 1, d)
  g.node('Add', [g.op('Squeeze', [o, g.ints('ax1s', [1])]), shared], ['Y']);
  g.output('Y', 'float32', ['T', HIDDEN]);
  return g.toBytes();
}

/** Per-expert transpose (E, a, b) -> (E, b, a). */
function transposeExperts(w: Float32Array, e: number, a: number, b: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let x = 0; x < e; x++) for (let i = 0; i < a; i++) for (let j = 0; j < b; j++) out[x * a * b + j * a + i] = w[x * a * b + i * b + j] as number;
  return out;
}

/**
 * ORT's com.microsoft MoE (CPU since 1.2x): experts stored (out, in) per expert, i.e.
 * fc1 (E, FFN, HIDDEN) and fc2 (E, HIDDEN, FFN) (the float op's layout in 1.30, checked
 * numerically). With k = 1 and normalize_routing_weights = 1 the softmax weight of the single
 * chosen expert is exactly 1, so feeding x * sigmoid(logit) reproduces LLaMA 4's gate.
 */
export function moeContribGraph(w: MoeWeights): Uint8Array {
  const g = new OnnxGraphBuilder('moe_contrib');
  const { logits, routedIn, shared } = common(g, w, false);
  g.initializer('w1t', transposeExperts(w.w1, w.e, HIDDEN, FFN), [w.e, FFN, HIDDEN]);
  g.initializer('w2t', transposeExperts(w.w2, w.e, FFN, HIDDEN), [w.e, HIDDEN, FFN]);
  const routed = g.node('MoE', [routedIn, logits, 'w1t', '', 'w2t'], 1, {
    domain: 'com.microsoft',
    attrs: { k: 1, activation_type: 'silu', normalize_routing_weights: 1 },
  })[0] as string;
  g.node('Add', [routed, shared], ['Y']);
  g.output('Y', 'float32', ['T', HIDDEN]);
  return g.toBytes();
}

function ffn(x: ArrayLike<number>, a: Float32Array, aOff: number, b: Float32Array, bOff: number): Float64Array {
  const h = new Float64Array(FFN);
  for (let j = 0; j < FFN; j++) {
    let acc = 0;
    for (let i = 0; i < HIDDEN; i++) acc += (x[i] as number) * (a[aOff + i * FFN + j] as number);
    h[j] = acc / (1 + Math.exp(-acc));
  }
  const y = new Float64Array(HIDDEN);
  for (let i = 0; i < HIDDEN; i++) {
    let acc = 0;
    for (let j = 0; j < FFN; j++) acc += (h[j] as number) * (b[bOff + j * HIDDEN + i] as number);
    y[i] = acc;
  }
  return y;
}

/** Float64 reference, plus the expert each token chose. */
export function moeReference(x: Float32Array, t: number, w: MoeWeights): { y: Float64Array; experts: number[] } {
  const y = new Float64Array(t * HIDDEN);
  const experts: number[] = [];
  for (let r = 0; r < t; r++) {
    const xr = x.subarray(r * HIDDEN, (r + 1) * HIDDEN);
    let best = 0;
    let bestLogit = -Infinity;
    for (let e = 0; e < w.e; e++) {
      let acc = 0;
      for (let i = 0; i < HIDDEN; i++) acc += (xr[i] as number) * (w.router[i * w.e + e] as number);
      if (acc > bestLogit) [best, bestLogit] = [e, acc];
    }
    experts.push(best);
    const gate = 1 / (1 + Math.exp(-bestLogit));
    const routed = ffn(Array.from(xr, (v) => v * gate), w.w1, best * HIDDEN * FFN, w.w2, best * FFN * HIDDEN);
    const shared = ffn(xr, w.s1, 0, w.s2, 0);
    for (let i = 0; i < HIDDEN; i++) y[r * HIDDEN + i] = (routed[i] as number) + (shared[i] as number);
  }
  return { y, experts };
}

function imbalance(experts: number[], e: number): number {
  const counts = new Array<number>(e).fill(0);
  for (const x of experts) counts[x] = (counts[x] as number) + 1;
  return Math.max(...counts) / (experts.length / e);
}

export async function benchMoeDispatch(ctx: BenchContext): Promise<BenchOutcome> {
  const rows: KernelRow[] = [];
  const skipped: string[] = [];
  const notes: string[] = [];
  interface MoeVariant {
    name: string;
    graph: (w: MoeWeights, q: () => QmoeWeights) => Uint8Array;
    dense: boolean;
    /** Bytes of one expert's two matrices in the variant's format. */
    expertBytes: number;
    dtype: string;
    /** The weights the float64 check uses (the dequantized experts for QMoE). */
    reference?: (q: () => QmoeWeights) => MoeWeights;
    note?: string;
    /** Activation bytes beyond the weights at T tokens. */
    peak: (e: number, t: number) => number;
  }
  const f32Expert = 4 * 2 * HIDDEN * FFN;
  const variants: MoeVariant[] = [
    // dense: E copies of the FFN activations; gather: one gathered copy of both expert
    // matrices per token.
    { name: 'ort-dense-all-experts', graph: denseGraph, dense: true, expertBytes: f32Expert, dtype: 'fp32', peak: (e, t) => 4 * e * t * (2 * FFN + 2 * HIDDEN) },
    { name: 'ort-gather-experts', graph: gatherGraph, dense: false, expertBytes: f32Expert, dtype: 'fp32', peak: (_e, t) => 4 * t * 2 * HIDDEN * FFN * 2 },
    { name: 'ort-moe-contrib', graph: moeContribGraph, dense: false, expertBytes: f32Expert, dtype: 'fp32', peak: (_e, t) => 4 * t * (2 * FFN + 2 * HIDDEN) },
    // int4: half a byte per weight plus a float32 scale per 64-weight block.
    { name: 'ort-qmoe-int4', graph: (w, q) => qmoeGraph(w, q()), dense: false, expertBytes: HIDDEN * FFN + (4 * 2 * HIDDEN * FFN) / QMOE_BLOCK, dtype: 'int4',
      reference: (q) => q().reference, note: 'int4 experts (block 64), checked against their own dequantization', peak: (_e, t) => 4 * t * (2 * FFN + 2 * HIDDEN) },
  ];
  // Not checked on a GPU here: ORT's sources register the CUDA QMoE kernel for 16-bit float
  // activations, so with float32 activations ORT may place the node on the CPU EP.
  if (ctx.device === 'cuda') notes.push('moe-dispatch ort-qmoe-int4: float32 activations; ORT registers CUDA QMoE for 16-bit activations, so this node may run on the CPU EP');
  for (const e of ctx.quick ? QUICK_EXPERTS : FULL_EXPERTS) {
    const w = moeWeights(e);
    let quantized: QmoeWeights | null = null;
    const q = () => (quantized ??= qmoeWeights(w));
    for (const v of variants) {
      const session = await OrtSession.create(v.graph(w, q), { device: ctx.device });
      try {
        const cx = seededFloats(4 * HIDDEN, 7);
        const got = (await session.run({ X: { data: cx, dims: [4, HIDDEN] } })).Y?.data as Float32Array;
        const err = assertClose(`moe-dispatch ${v.name} E=${e}`, got, moeReference(cx, 4, v.reference?.(q) ?? w).y, 1e-4);
        for (const t of ctx.quick ? QUICK_TOKENS : FULL_TOKENS) {
          const peak = v.peak(e, t);
          if (peak > ctx.maxMemoryBytes) {
            skipped.push(`moe-dispatch ${v.name} E=${e} T=${t}: estimated ${(peak / 2 ** 30).toFixed(2)} GiB of activations > --max-memory`);
            continue;
          }
          const x = seededFloats(t * HIDDEN, 8 + t);
          const experts = t <= 128 ? moeReference(x, t, w).experts : null;
          const feeds = session.prepare({ X: { data: x, dims: [t, HIDDEN] } });
          const timing = await timeIt(`${v.name} E=${e} T=${t}`, () => session.runPrepared(feeds), ctx.timing);
          const used = experts ? new Set(experts).size : Math.min(t, e);
          const routedFlops = 2 * t * 2 * HIDDEN * FFN;
          // The shared expert is float32 in every variant.
          const cost = {
            flops: (v.dense ? e : 1) * routedFlops + routedFlops + 2 * t * HIDDEN * e,
            bytes: (v.dense ? e : used) * v.expertBytes + f32Expert + 4 * HIDDEN * e + 2 * 4 * t * HIDDEN,
          };
          const row = makeRow({ kernel: 'moe-dispatch', variant: v.name, backend: 'ort', device: ctx.device, shape: `${t}x${HIDDEN}x${FFN}x${e}`, dtype: v.dtype, max_abs_err: err, exact: true, ...(v.note ? { note: v.note } : {}) }, timing, cost, ctx.limits);
          rows.push(row);
          ctx.log(`moe-dispatch ${v.name.padEnd(24)} E=${String(e).padEnd(4)} T=${String(t).padEnd(5)} ${row.median_ms.toFixed(3)} ms  ${(100 * row.roofline_fraction).toFixed(1)}% of ${row.bound}`);
          const note = `moe-dispatch E=${e} T=${t}: routing imbalance ${experts ? imbalance(experts, e).toFixed(2) : '?'}x (busiest expert / mean)`;
          if (experts && t >= e && !notes.includes(note)) notes.push(note);
        }
      } finally {
        await session.close();
      }
    }
  }
  return { rows, skipped, notes };
}
