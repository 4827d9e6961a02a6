// A minimal WebAssembly binary encoder: enough to emit one module with an imported memory and
// a few exported functions whose bodies are written as opcode sequences. No wat2wasm is
// installed and the kernels are small, so hand-encoding (spec: webassembly.github.io/spec,
// "Binary Format") keeps the build free of tools.

export const I32 = 0x7f;
export const F32 = 0x7d;
export const V128 = 0x7b;
export type ValType = typeof I32 | typeof F32 | typeof V128;

/** Unsigned LEB128. */
export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 for i32 constants. */
export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

/** Core and SIMD opcodes used by the kernels (SIMD ones follow the 0xfd prefix). */
export const op = {
  block: [0x02, 0x40], loop: [0x03, 0x40], end: [0x0b], br: 0x0c, brIf: 0x0d, ret: [0x0f],
  localGet: 0x20, localSet: 0x21, localTee: 0x22,
  i32Const: (n: number) => [0x41, ...sleb(n)],
  i32Add: [0x6a], i32Sub: [0x6b], i32Mul: [0x6c], i32And: [0x71], i32Shl: [0x74], i32ShrU: [0x76], i32Ne: [0x47], i32LtU: [0x49],
  i32Load: (offset = 0) => [0x28, 2, ...uleb(offset)],
  i32Load8U: (offset = 0) => [0x2d, 0, ...uleb(offset)],
  f32Load: (offset = 0) => [0x2a, 2, ...uleb(offset)],
  f32Store: (offset = 0) => [0x38, 2, ...uleb(offset)],
  f32Add: [0x92], f32Mul: [0x94],
  v128Load: (offset = 0) => [0xfd, 0x00, 4, ...uleb(offset)],
  v128Store: (offset = 0) => [0xfd, 0x0b, 4, ...uleb(offset)],
  v128Const: (bytes: readonly number[]) => [0xfd, 0x0c, ...bytes],
  i8x16Shuffle: (lanes: readonly number[]) => [0xfd, 0x0d, ...lanes],
  i8x16Swizzle: [0xfd, 0x0e],
  i8x16Splat: [0xfd, 0x0f],
  f32x4Splat: [0xfd, 0x13],
  f32x4ExtractLane: (lane: number) => [0xfd, 0x1f, lane],
  v128And: [0xfd, 0x4e],
  i8x16ShrU: [0xfd, 0x6d],
  i16x8ShrU: [0xfd, 0x8d, 0x01],
  // Relaxed SIMD (wasm 3.0; behind --experimental-wasm-relaxed-simd in Node 20's V8 11.3).
  i8x16RelaxedSwizzle: [0xfd, 0x80, 0x02],
  f32x4RelaxedMadd: [0xfd, 0x85, 0x02],
  f32x4Add: [0xfd, 0xe4, 0x01],
  f32x4Mul: [0xfd, 0xe6, 0x01],
} as const;

export interface WasmFunction {
  name: string;
  params: ValType[];
  results: ValType[];
  /** Extra locals after the params, one entry per local. */
  locals: ValType[];
  body: number[];
}

function section(id: number, payload: number[]): number[] {
  return [id, ...uleb(payload.length), ...payload];
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function name(s: string): number[] {
  const b = [...new TextEncoder().encode(s)];
  return [...uleb(b.length), ...b];
}

export interface MemoryImport {
  module: string;
  field: string;
  minPages: number;
  maxPages: number;
  shared: boolean;
}

/** Encodes a module importing one memory and exporting `functions`. */
export function encodeModule(memory: MemoryImport, functions: WasmFunction[]): Uint8Array<ArrayBuffer> {
  const types = functions.map((f) => [0x60, ...uleb(f.params.length), ...f.params, ...uleb(f.results.length), ...f.results]);
  // limits flag 0x03 = shared with a maximum (threads proposal); 0x01 = max only.
  const limits = [memory.shared ? 0x03 : 0x01, ...uleb(memory.minPages), ...uleb(memory.maxPages)];
  const imports = [[...name(memory.module), ...name(memory.field), 0x02, ...limits]];
  const funcs = functions.map((_, i) => uleb(i));
  const exports = functions.map((f, i) => [...name(f.name), 0x00, ...uleb(i)]);
  const codes = functions.map((f) => {
    const locals = vec(f.locals.map((t) => [1, t]));
    const body = [...locals, ...f.body, 0x0b];
    return [...uleb(body.length), ...body];
  });
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(types)),
    ...section(2, vec(imports)),
    ...section(3, vec(funcs)),
    ...section(7, vec(exports)),
    ...section(10, vec(codes)),
  ]);
}
