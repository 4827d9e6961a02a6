// The quantized-experts variant of moe-dispatch: ORT's com.microsoft QMoE with 4-bit block-wise
// experts. onnxruntime-node 1.30 registers a float32 CPU kernel for it (probed: a session with
// T = float32, expert_weight_bits 4, block_size 64 builds and runs on the CPU EP). ORT's
// sources register the CUDA kernel for 16-bit activations, so under the CUDA EP this float32
// node may fall back to CPU (not checked: no GPU here); the bench says so in a note.
//
// Layout (ContribOperators.md, QMoE): fc1 (E, FFN, HIDDEN/2) and fc2 (E, HIDDEN, FFN/2) uint8,
// i.e. (out, in) per expert with two 4-bit values per byte, element 2i in the LOW nibble (the
// MatMulNBits packing); scales (E, out, in/block); no zero points, so the zero point is
// 2^(bits-1) = 8 and w = (q - 8) * scale.
import { OnnxGraphBuilder } from '../runners/ort/onnx-builder.ts';
import { FFN, HIDDEN, type MoeWeights } from './moe-dispatch.ts';

export const QMOE_BLOCK = 64;

export interface Int4Experts {
  /** (E, out, in/2), low nibble first. */
  packed: Uint8Array;
  /** (E, out, in/block). */
  scales: Float32Array;
  /** The dequantized weights in the float variants' (E, in, out) layout: the check's reference. */
  dequantized: Float32Array;
}

/**
 * Symmetric round-to-nearest int4 per block of `block` inputs: scale = max|w| / 7, q = 8 +
 * round(w / scale) clamped to 0..15 (-8 is never produced, so the grid is symmetric). `w` is
 * (E, in, out) as in MoeWeights.
 */
export function quantizeExpertsInt4(w: Float32Array, e: number, inDim: number, outDim: number, block = QMOE_BLOCK): Int4Experts {
  if (inDim % block !== 0) throw new Error(`QMoE int4 experts: input size ${inDim} is not a multiple of block ${block}`);
  const packed = new Uint8Array((e * outDim * inDim) / 2);
  const scales = new Float32Array((e * outDim * inDim) / block);
  const dequantized = new Float32Array(w.length);
  const blocks = inDim / block;
  for (let x = 0; x < e; x++) {
    for (let o = 0; o < outDim; o++) {
      for (let b = 0; b < blocks; b++) {
        let amax = 0;
        for (let i = b * block; i < (b + 1) * block; i++) amax = Math.max(amax, Math.abs(w[(x * inDim + i) * outDim + o] as number));
        const scale = Math.fround(amax / 7);
        scales[(x * outDim + o) * blocks + b] = scale;
        for (let i = b * block; i < (b + 1) * block; i++) {
          const at = (x * inDim + i) * outDim + o;
          const q = scale === 0 ? 8 : Math.min(15, Math.max(0, 8 + Math.round((w[at] as number) / scale)));
          const flat = (x * outDim + o) * inDim + i;
          packed[flat >> 1] = (packed[flat >> 1] as number) | ((flat & 1) === 0 ? q : q << 4);
          dequantized[at] = Math.fround((q - 8) * scale);
        }
      }
    }
  }
  return { packed, scales, dequantized };
}

export interface QmoeWeights {
  fc1: Int4Experts;
  fc2: Int4Experts;
  /** The float weights with the experts replaced by their dequantized values. */
  reference: MoeWeights;
}

export function qmoeWeights(w: MoeWeights): QmoeWeights {
  const fc1 = quantizeExpertsInt4(w.w1, w.e, HIDDEN, FFN);
  const fc2 = quantizeExpertsInt4(w.w2, w.e, FFN, HIDDEN);
  return { fc1, fc2, reference: { ...w, w1: fc1.dequantized, w2: fc2.dequantized } };
}

/**
 * LLaMA 4's layer with QMoE for the routed experts (k = 1, normalize_routing_weights = 1, so
 * the chosen expert's weight is exactly 1 and the sigmoid gate is applied to its input, as in
 * moeContribGraph); router and shared expert stay float32.
 */
export function qmoeGraph(w: MoeWeights, q: QmoeWeights): Uint8Array {
  const g = new OnnxGraphBuilder('moe_qmoe');
  g.input('X', 'float32', ['T', HIDDEN]);
  g.initializer('router', w.router, [HIDDEN, w.e]);
  g.initializer('s1', w.s1, [HIDDEN, FFN]);
  g.initializer('s2', w.s2, [FFN, HIDDEN]);
  g.initializer('fc1', q.fc1.packed, [w.e, FFN, HIDDEN / 2]);
  g.initializer('fc1_scales', q.fc1.scales, [w.e, FFN, HIDDEN / QMOE_BLOCK]);
  g.initializer('fc2', q.fc2.packed, [w.e, HIDDEN, FFN / 2]);
  g.initializer('fc2_scales', q.fc2.scales, [w.e, HIDDEN, FFN / QMOE_BLOCK]);
  const logits = g.op('MatMul', ['X', 'router']);
  const top = g.op('ReduceMax', [logits, g.ints('ax1', [1])], { attrs: { keepdims: 1 } });
  const routedIn = g.op('Mul', ['X', g.op('Sigmoid', [top])]);
  const silu = (x: string) => g.op('Mul', [x, g.op('Sigmoid', [x])]);
  const shared = g.op('MatMul', [silu(g.op('MatMul', ['X', 's1'])), 's2']);
  const routed = g.node('QMoE', [routedIn, logits, 'fc1', 'fc1_scales', '', 'fc2', 'fc2_scales'], 1, {
    domain: 'com.microsoft',
    attrs: { k: 1, activation_type: 'silu', normalize_routing_weights: 1, expert_weight_bits: 4, block_size: QMOE_BLOCK },
  })[0] as string;
  g.node('Add', [routed, shared], ['Y']);
  g.output('Y', 'float32', ['T', HIDDEN]);
  return g.toBytes();
}
