// Float16 / BFloat16 <-> float32 conversions for safetensors I/O. Written out bit by bit (IEEE 754
// binary16; bfloat16 = the top 16 bits of binary32) so that results do not depend on a runtime's
// Float16Array support; rounding is round-to-nearest-even, as torch's `.to(torch.float16)` does.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** binary16 bits -> number (exact: every binary16 value is representable in binary32). */
export function f16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // subnormal (and zero)
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** number -> binary16 bits, rounding the binary32 value to nearest even. */
export function numberToF16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf / NaN (quiet)
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> Inf
  if (e <= 0) {
    // Result is subnormal in binary16 (or rounds to zero).
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let out = mant >>> shift;
    if (rest > half || (rest === half && out & 1)) out += 1;
    return sign | out;
  }
  let out = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && out & 1)) out += 1; // carry into the exponent is correct
  return sign | out;
}

/** bfloat16 bits -> number. */
export function bf16BitsToNumber(b: number): number {
  u32[0] = (b & 0xffff) << 16;
  return f32[0]!;
}

/** number -> bfloat16 bits: round the binary32 bits to nearest even at bit 16. */
export function numberToBf16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  if ((bits & 0x7f800000) === 0x7f800000 && bits & 0x7fffff) return (bits >>> 16) | 0x40; // NaN stays NaN
  const rounded = bits + 0x7fff + ((bits >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

export const SAFETENSORS_DTYPES = ['F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL', 'F8_E4M3', 'F8_E5M2', 'U16', 'U32', 'U64'] as const;
export type SafetensorsDtype = (typeof SAFETENSORS_DTYPES)[number];

/** The dtypes we convert to float32 and write. */
export const FLOAT_DTYPES = ['F32', 'F16', 'BF16'] as const;
export type FloatDtype = (typeof FLOAT_DTYPES)[number];

export const DTYPE_BYTES: Record<SafetensorsDtype, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1, F8_E4M3: 1, F8_E5M2: 1, U16: 2, U32: 4, U64: 8,
};

export function isFloatDtype(d: string): d is FloatDtype {
  return (FLOAT_DTYPES as readonly string[]).includes(d);
}

/** Decodes `count` little-endian values of `dtype` from `src` into `dst` starting at `dstOffset`. */
export function decodeFloats(dtype: FloatDtype, src: Uint8Array, dst: Float32Array, dstOffset: number, count: number): void {
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  if (dtype === 'F32') {
    for (let i = 0; i < count; i++) dst[dstOffset + i] = view.getFloat32(4 * i, true);
  } else if (dtype === 'F16') {
    for (let i = 0; i < count; i++) dst[dstOffset + i] = f16BitsToNumber(view.getUint16(2 * i, true));
  } else {
    for (let i = 0; i < count; i++) dst[dstOffset + i] = bf16BitsToNumber(view.getUint16(2 * i, true));
  }
}

/** Encodes `count` values of `src` from `srcOffset` into `dst` as little-endian `dtype`. */
export function encodeFloats(dtype: FloatDtype, src: Float32Array, srcOffset: number, count: number, dst: Uint8Array): void {
  const view = new DataView(dst.buffer, dst.byteOffset, dst.byteLength);
  if (dtype === 'F32') {
    for (let i = 0; i < count; i++) view.setFloat32(4 * i, src[srcOffset + i]!, true);
  } else if (dtype === 'F16') {
    for (let i = 0; i < count; i++) view.setUint16(2 * i, numberToF16Bits(src[srcOffset + i]!), true);
  } else {
    for (let i = 0; i < count; i++) view.setUint16(2 * i, numberToBf16Bits(src[srcOffset + i]!), true);
  }
}
