// ONNX graphs for the NF4 matmul variants: Y = A W^T with W an (N, K) weight, A (M, K).
// Each builder returns serialized model bytes; the bench feeds A and times the session.
import { NF4_CODE } from '../runners/quant/nf4.ts';
import { OnnxGraphBuilder } from '../runners/ort/onnx-builder.ts';

export interface Nf4Weights {
  n: number;
  k: number;
  /** (N, K) row-major NF4, high nibble first (bitsandbytes / MatMulBnb4 layout). */
  packed: Uint8Array;
  absmax: Float32Array;
  blockSize: number;
}

/** fp32 MatMul with the dequantized weight stored transposed, (K, N), as MatMul wants it. */
export function fp32MatMulGraph(wKN: Float32Array, k: number, n: number): Uint8Array {
  const g = new OnnxGraphBuilder('fp32_matmul');
  g.input('A', 'float32', ['M', k]);
  g.initializer('W', wKN, [k, n]);
  g.node('MatMul', ['A', 'W'], ['Y']);
  g.output('Y', 'float32', ['M', n]);
  return g.toBytes();
}

/** com.microsoft MatMulBnb4, quant_type 1 = NF4 (contrib_ops/cpu/quantization/matmul_bnb4.cc). */
export function matMulBnb4Graph(w: Nf4Weights): Uint8Array {
  const g = new OnnxGraphBuilder('matmul_bnb4');
  g.input('A', 'float32', ['M', w.k]);
  g.initializer('B', w.packed, [w.packed.length]);
  g.initializer('absmax', w.absmax, [w.absmax.length]);
  g.node('MatMulBnb4', ['A', 'B', 'absmax'], ['Y'], {
    domain: 'com.microsoft',
    attrs: { K: w.k, N: w.n, block_size: w.blockSize, quant_type: 1 },
  });
  g.output('Y', 'float32', ['M', w.n]);
  return g.toBytes();
}

/**
 * Exact dequantize-then-MatMul inside ORT: split nibbles with BitShift/BitwiseAnd, look codes
 * up with Gather on the 16-value code book, scale by absmax, transpose into MatMul. Every op is
 * standard ONNX, so this is the formulation any EP can run. Inputs: A, packed, absmax.
 */
export function gatherDequantGraph(w: Nf4Weights): Uint8Array {
  const { n, k, blockSize } = w;
  const g = new OnnxGraphBuilder('nf4_gather_dequant');
  g.input('A', 'float32', ['M', k]);
  // Packed weights and absmax are graph INPUTS: as initializers ORT's constant folding would
  // precompute the whole fp32 matrix at load, which is just fp32 MatMul holding 8x the memory.
  g.input('packed', 'uint8', [(n * k) / 2, 1]);
  g.input('absmax', 'float32', [(n * k) / blockSize, 1]);
  g.initializer('code', NF4_CODE, [16]);
  g.initializer('four', Uint8Array.of(4), []);
  g.initializer('fifteen', Uint8Array.of(15), []);
  const hi = g.node('BitShift', ['packed', 'four'], 1, { attrs: { direction: 'RIGHT' } })[0] as string;
  const lo = g.op('BitwiseAnd', ['packed', 'fifteen']);
  // (NK/2, 2) with the high nibble first reproduces bitsandbytes' element order.
  const idx = g.op('Concat', [hi, lo], { attrs: { axis: 1 } });
  const idx32 = g.op('Cast', [idx], { attrs: { to: 6 } });
  const vals = g.op('Gather', ['code', idx32], { attrs: { axis: 0 } });
  const blocks = g.op('Reshape', [vals, g.ints('block_shape', [(n * k) / blockSize, blockSize])]);
  const scaled = g.op('Mul', [blocks, 'absmax']);
  const wNK = g.op('Reshape', [scaled, g.ints('nk_shape', [n, k])]);
  const wKN = g.op('Transpose', [wNK], { attrs: { perm: [1, 0] } });
  g.node('MatMul', ['A', wKN], ['Y']);
  g.output('Y', 'float32', ['M', n]);
  return g.toBytes();
}

export interface Int4Weights {
  n: number;
  k: number;
  /** [N, K/block, block/2], element 2i in the LOW nibble (MatMulNBits layout). */
  packed: Uint8Array;
  scales: Float32Array;
  blockSize: number;
}

/**
 * com.microsoft MatMulNBits, 4 bits, no zero points (so the zero point is 8: value =
 * (q - 8) * scale, contrib_ops/cpu/quantization/matmul_nbits.cc). Not NF4: it is the int4
 * speed reference the issue compares against, checked against its own int4 dequantization.
 */
export function matMulNBitsGraph(w: Int4Weights, accuracyLevel = 0): Uint8Array {
  const g = new OnnxGraphBuilder('matmul_nbits');
  g.input('A', 'float32', ['M', w.k]);
  g.initializer('B', w.packed, [w.n, w.k / w.blockSize, w.blockSize / 2]);
  g.initializer('scales', w.scales, [w.scales.length]);
  g.node('MatMulNBits', ['A', 'B', 'scales'], ['Y'], {
    domain: 'com.microsoft',
    attrs: { K: w.k, N: w.n, bits: 4, block_size: w.blockSize, accuracy_level: accuracyLevel },
  });
  g.output('Y', 'float32', ['M', w.n]);
  return g.toBytes();
}

/** Dequantizes MatMulNBits int4 weights to (N, K) float32. */
export function int4Dequantize(w: Int4Weights): Float32Array {
  const out = new Float32Array(w.n * w.k);
  for (let i = 0; i < out.length; i++) {
    const byte = w.packed[i >> 1] as number;
    const q = (i & 1) === 0 ? byte & 0x0f : byte >> 4;
    out[i] = (q - 8) * (w.scales[Math.floor(i / w.blockSize)] as number);
  }
  return out;
}
