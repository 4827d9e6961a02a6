// bitsandbytes-exact NF4 (QLoRA, Dettmers et al. 2023, arXiv:2305.14314) with double
// quantization of the block scales. Everything here follows bitsandbytes bit for bit so a
// checkpoint quantized there dequantizes to the same float32 weights here:
// - the 16-value code book is bitsandbytes' `get_4bit_type('nf4')` (functional.py) — the same
//   float32 constants as its CUDA `dDequantizeNF4` and ORT's `nf4_qaunt_map`
//   (contrib_ops/cpu/quantization/blockwise_quant_block_bnb4.h);
// - quantization is by block absmax, then the decision tree of bitsandbytes' `dQuantizeNF4`
//   (thresholds are midpoints between neighbouring codes; a value exactly on a midpoint takes
//   the LOWER code because every test is a strict `>`);
// - two codes per byte, the FIRST element in the HIGH nibble (`(q0 << 4) | q1` in both
//   bitsandbytes' kQuantizeBlockwise and ORT's QuantizeBlockBnb4);
// - double quantization (`compress_statistics=True` in `quantize_4bit`): offset = mean(absmax),
//   (absmax - offset) quantized blockwise (block 256) with the signed 8-bit dynamic map.
// The layout matches ORT's MatMulBnb4: the (N, K) weight (out, in — bitsandbytes' Linear4bit
// layout) flattened row-major, absmax one float per `blockSize` consecutive elements.

/** bitsandbytes functional.py get_4bit_type('nf4'), as float32. */
export const NF4_CODE: Float32Array = Float32Array.from([
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
  -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
  0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
]);

/** NF4 block size bitsandbytes uses for weights (Linear4bit default, QLoRA paper §3). */
export const NF4_BLOCK = 64;
/** Block size bitsandbytes uses to quantize the absmax statistics (quantize_4bit). */
export const ABSMAX_BLOCK = 256;

// The decision-tree thresholds as float32, because the C++/CUDA code compares float32 literals.
const T0 = Math.fround(0.03979014977812767);
const T1 = Math.fround(0.3893125355243683);
const T2 = Math.fround(0.6427869200706482);
const T3 = Math.fround(0.8614784181118011);
const T4 = Math.fround(0.5016634166240692);
const T5 = Math.fround(0.2035212516784668);
const T6 = Math.fround(0.2920137718319893);
const T7 = Math.fround(0.1202552504837513);
const T8 = Math.fround(-0.33967943489551544);
const T9 = Math.fround(-0.13791173323988914);
const T10 = Math.fround(-0.045525018125772476);
const T11 = Math.fround(-0.23460740596055984);
const T12 = Math.fround(-0.6106329262256622);
const T13 = Math.fround(-0.4599952697753906);
const T14 = Math.fround(-0.8480964004993439);

/** bitsandbytes dQuantizeNF4: the code of a value already scaled into [-1, 1]. */
export function nf4QuantizeValue(x: number): number {
  if (x > T0) {
    if (x > T1) {
      if (x > T2) return x > T3 ? 0b1111 : 0b1110;
      return x > T4 ? 0b1101 : 0b1100;
    }
    if (x > T5) return x > T6 ? 0b1011 : 0b1010;
    return x > T7 ? 0b1001 : 0b1000;
  }
  if (x > T8) {
    if (x > T9) return x > T10 ? 0b0111 : 0b0110;
    return x > T11 ? 0b0101 : 0b0100;
  }
  if (x > T12) return x > T13 ? 0b0011 : 0b0010;
  return x > T14 ? 0b0001 : 0b0000;
}

export interface Nf4Tensor {
  /** ceil(n / 2) bytes, element 2i in the high nibble of byte i. */
  packed: Uint8Array;
  /** One float32 per block: the block's absolute maximum. */
  absmax: Float32Array;
  /** Number of elements (N * K for a weight). */
  n: number;
  blockSize: number;
}

/** Blockwise NF4 quantization by absmax, as bitsandbytes quantize_4bit(quant_type='nf4'). */
export function nf4Quantize(values: Float32Array, blockSize = NF4_BLOCK): Nf4Tensor {
  if (blockSize % 2 !== 0) throw new Error(`NF4 block size must be even, got ${blockSize}`);
  const n = values.length;
  const blocks = Math.ceil(n / blockSize);
  const absmax = new Float32Array(blocks);
  const packed = new Uint8Array(Math.ceil(n / 2));
  for (let b = 0; b < blocks; b++) {
    const start = b * blockSize;
    const end = Math.min(n, start + blockSize);
    let m = 0;
    for (let i = start; i < end; i++) m = Math.max(m, Math.abs(values[i] as number));
    absmax[b] = m;
    // Scale by the float32 reciprocal, as both reference kernels do (not by division).
    const inv = m === 0 ? 0 : Math.fround(1 / Math.fround(m));
    for (let i = start; i < end; i += 2) {
      const q0 = nf4QuantizeValue(Math.fround((values[i] as number) * inv));
      const q1 = i + 1 < end ? nf4QuantizeValue(Math.fround((values[i + 1] as number) * inv)) : nf4QuantizeValue(0);
      packed[i >> 1] = (q0 << 4) | q1;
    }
  }
  return { packed, absmax, n, blockSize };
}

/** Code index of element i (high nibble first). */
export function nf4CodeAt(packed: Uint8Array, i: number): number {
  const byte = packed[i >> 1] as number;
  return (i & 1) === 0 ? byte >> 4 : byte & 0x0f;
}

/** Dequantizes to float32: code * absmax, one float32 product per element (bitsandbytes, ORT). */
export function nf4Dequantize(t: Nf4Tensor): Float32Array {
  const out = new Float32Array(t.n);
  for (let i = 0; i < t.n; i++) {
    out[i] = (NF4_CODE[nf4CodeAt(t.packed, i)] as number) * (t.absmax[Math.floor(i / t.blockSize)] as number);
  }
  return out;
}

// --- double quantization of the absmax statistics ---------------------------------------

/** torch.linspace(start, end, steps) in float32, as ATen's CPU kernel computes it. */
function linspaceF32(start: number, end: number, steps: number): Float32Array {
  const f = Math.fround;
  const s = f(start);
  const e = f(end);
  const step = f(f(e - s) / (steps - 1));
  const half = Math.floor(steps / 2);
  // ATen fills the first half forward from start and the second half backward from end.
  return Float32Array.from({ length: steps }, (_, i) => (i < half ? f(s + f(step * i)) : f(e - f(step * (steps - i - 1)))));
}

/**
 * bitsandbytes create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8): 127
 * positive and 127 negative values (7 decades, 2^i fraction means in decade i), plus 0 and 1.
 */
export function createDynamicMap(): Float32Array {
  const f = Math.fround;
  const data: number[] = [];
  const maxExponentBits = 7;
  for (let i = 0; i < maxExponentBits; i++) {
    const b = linspaceF32(0.1, 1, 2 ** i + 1);
    const scale = f(10 ** (-(maxExponentBits - 1) + i));
    for (let j = 0; j + 1 < b.length; j++) {
      const mean = f(f((b[j] as number) + (b[j + 1] as number)) / 2);
      data.push(f(scale * mean), -f(scale * mean));
    }
  }
  data.push(0, 1);
  return Float32Array.from(data.sort((a, b) => a - b));
}

/**
 * Index of the code nearest x in a sorted code book, as bitsandbytes' quantize_blockwise decides it
 * (backends/default/ops.py: `bounds = (code[:-1] + code[1:]) / 2` in float32, then
 * `torch.bucketize(x, bounds)`, right=False): the number of float32 midpoints strictly below x, so a
 * value exactly on a midpoint takes the lower code.
 */
export function nearestCode(code: Float32Array, x: number): number {
  let lo = 0;
  let hi = code.length - 1;
  // Invariant: midpoints below index lo are < x; the midpoint at index hi - 1 (between hi-1, hi) is >= x or hi is last.
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const bound = Math.fround(Math.fround((code[mid] as number) + (code[mid + 1] as number)) / 2);
    if (bound < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export interface DoubleQuantAbsmax {
  /** One byte per NF4 block: index into `code`. */
  qabsmax: Uint8Array;
  /** One float32 per 256 NF4 blocks: absmax of (absmax - offset) in that group. */
  absmax2: Float32Array;
  /** mean of the original absmax values. */
  offset: number;
  code: Float32Array;
  blockSize: number;
}

/** bitsandbytes quantize_4bit(compress_statistics=True)'s treatment of the absmax vector. */
export function doubleQuantizeAbsmax(absmax: Float32Array, blockSize = ABSMAX_BLOCK): DoubleQuantAbsmax {
  const code = createDynamicMap();
  // torch.mean over float32 accumulates in higher precision then rounds once.
  let sum = 0;
  for (const a of absmax) sum += a;
  const offset = Math.fround(sum / absmax.length);
  const groups = Math.ceil(absmax.length / blockSize);
  const absmax2 = new Float32Array(groups);
  const qabsmax = new Uint8Array(absmax.length);
  for (let g = 0; g < groups; g++) {
    const start = g * blockSize;
    const end = Math.min(absmax.length, start + blockSize);
    let m = 0;
    for (let i = start; i < end; i++) m = Math.max(m, Math.abs(Math.fround((absmax[i] as number) - offset)));
    absmax2[g] = m;
    const inv = m === 0 ? 0 : Math.fround(1 / m);
    for (let i = start; i < end; i++) qabsmax[i] = nearestCode(code, Math.fround(Math.fround((absmax[i] as number) - offset) * inv));
  }
  return { qabsmax, absmax2, offset, code, blockSize };
}

/** dequantize_blockwise(qabsmax, state2) + offset: the absmax values QLoRA actually uses. */
export function dequantizeAbsmax(d: DoubleQuantAbsmax): Float32Array {
  const out = new Float32Array(d.qabsmax.length);
  for (let i = 0; i < out.length; i++) {
    out[i] = Math.fround((d.code[d.qabsmax[i] as number] as number) * (d.absmax2[Math.floor(i / d.blockSize)] as number)) + d.offset;
  }
  return out;
}

/** NF4 with double-quantized statistics, dequantized to the float32 absmax it stands for. */
export function nf4QuantizeDouble(values: Float32Array, blockSize = NF4_BLOCK): { tensor: Nf4Tensor; stats: DoubleQuantAbsmax } {
  const t = nf4Quantize(values, blockSize);
  const stats = doubleQuantizeAbsmax(t.absmax);
  return { tensor: { ...t, absmax: dequantizeAbsmax(stats) }, stats };
}
