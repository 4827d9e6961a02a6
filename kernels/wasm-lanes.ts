// Small pieces both hand-encoded NF4 GEMV kernels use: local get/set instructions and the
// i8x16.shuffle lane patterns that interleave two vectors.
import { op } from './wasm-encoder.ts';

export const get = (i: number) => [op.localGet, i];
export const set = (i: number) => [op.localSet, i];
export const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
// Byte interleaves: lanes 0..7 of a with 0..7 of b, and 8..15 with 8..15.
export const BYTES_LO = range(0, 8).flatMap((i) => [i, 16 + i]);
export const BYTES_HI = range(8, 8).flatMap((i) => [i, 16 + i]);
// 16-bit interleaves: u16 lanes 0..3 of a with 0..3 of b, and 4..7 with 4..7.
export const HALVES_LO = range(0, 4).flatMap((i) => [2 * i, 2 * i + 1, 16 + 2 * i, 17 + 2 * i]);
export const HALVES_HI = range(4, 4).flatMap((i) => [2 * i, 2 * i + 1, 16 + 2 * i, 17 + 2 * i]);
