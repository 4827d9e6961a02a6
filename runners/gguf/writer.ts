// A GGUF v3 file writer (ggml's docs/gguf.md; gguf-py `GGUFWriter`): header, typed key/value
// metadata, tensor infos, then tensor data, each tensor aligned to `general.alignment` (32).
// Written by hand because no maintained npm package writes GGUF (node-llama-cpp and
// @huggingface/gguf only read it); the format is small and fixed. Everything is little-endian.
import { closeSync, openSync, writeSync } from 'node:fs';
import { encodeFloats } from '../hf/dtype.ts';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** gguf_type (ggml/include/gguf.h). */
export const GgufValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;

/** The ggml_type values this writer emits (ggml/include/ggml.h). */
export const GGML_TYPES = { F32: 0, F16: 1 } as const;
export type GgmlTensorType = keyof typeof GGML_TYPES;

/** A metadata value with its GGUF type; arrays hold one element type. */
export type GgufValue =
  | { type: 'u32'; value: number }
  | { type: 'i32'; value: number }
  | { type: 'f32'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'string[]'; value: readonly string[] }
  | { type: 'f32[]'; value: ArrayLike<number> }
  | { type: 'i32[]'; value: ArrayLike<number> };

export interface GgufTensor {
  name: string;
  /** Shape as PyTorch/HF writes it (outermost first); GGUF stores it reversed (ne[0] innermost). */
  shape: readonly number[];
  type: GgmlTensorType;
  /** Row-major values, converted to `type` when written. */
  data: Float32Array;
}

/** Growable little-endian byte buffer for the header, metadata and tensor infos. */
class ByteSink {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
  }

  i32(v: number): void {
    this.reserve(4);
    this.view.setInt32(this.length, v, true);
    this.length += 4;
  }

  u64(v: number): void {
    this.reserve(8);
    this.view.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
  }

  f32(v: number): void {
    this.reserve(4);
    this.view.setFloat32(this.length, v, true);
    this.length += 4;
  }

  u8(v: number): void {
    this.reserve(1);
    this.buf[this.length++] = v;
  }

  /** gguf_string: u64 byte length, then UTF-8 bytes without a terminator. */
  string(s: string): void {
    const bytes = Buffer.from(s, 'utf8');
    this.u64(bytes.length);
    this.reserve(bytes.length);
    this.buf.set(bytes, this.length);
    this.length += bytes.length;
  }

  padTo(alignment: number): void {
    while (this.length % alignment !== 0) this.u8(0);
  }

  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

function writeValue(sink: ByteSink, v: GgufValue): void {
  const array = (elemType: number, n: number, each: (i: number) => void) => {
    sink.u32(GgufValueType.ARRAY);
    sink.u32(elemType);
    sink.u64(n);
    for (let i = 0; i < n; i++) each(i);
  };
  switch (v.type) {
    case 'u32':
      sink.u32(GgufValueType.UINT32);
      sink.u32(v.value);
      return;
    case 'i32':
      sink.u32(GgufValueType.INT32);
      sink.i32(v.value);
      return;
    case 'f32':
      sink.u32(GgufValueType.FLOAT32);
      sink.f32(v.value);
      return;
    case 'bool':
      sink.u32(GgufValueType.BOOL);
      sink.u8(v.value ? 1 : 0);
      return;
    case 'string':
      sink.u32(GgufValueType.STRING);
      sink.string(v.value);
      return;
    case 'string[]':
      array(GgufValueType.STRING, v.value.length, (i) => sink.string(v.value[i]!));
      return;
    case 'f32[]':
      array(GgufValueType.FLOAT32, v.value.length, (i) => sink.f32(v.value[i]!));
      return;
    case 'i32[]':
      array(GgufValueType.INT32, v.value.length, (i) => sink.i32(v.value[i]!));
      return;
  }
}

const BYTES_PER_ELEMENT: Record<GgmlTensorType, number> = { F32: 4, F16: 2 };

function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

/**
 * Writes a GGUF v3 file. `metadata` keys are written in the given order (gguf-py writes
 * general.architecture first, which llama.cpp does not require but readers expect).
 */
export function writeGguf(path: string, metadata: ReadonlyMap<string, GgufValue>, tensors: readonly GgufTensor[], alignment = GGUF_DEFAULT_ALIGNMENT): void {
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name)) throw new Error(`GGUF: duplicate tensor name ${t.name}`);
    names.add(t.name);
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new Error(`GGUF: tensor ${t.name} has ${t.data.length} values but shape [${t.shape.join(', ')}]`);
  }
  const header = new ByteSink();
  header.u32(GGUF_MAGIC);
  header.u32(GGUF_VERSION);
  header.u64(tensors.length);
  const kv = new Map(metadata);
  if (alignment !== GGUF_DEFAULT_ALIGNMENT) kv.set('general.alignment', { type: 'u32', value: alignment });
  header.u64(kv.size);
  for (const [key, value] of kv) {
    header.string(key);
    writeValue(header, value);
  }
  // Tensor infos: offsets are relative to the start of the data section, each aligned.
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    header.string(t.name);
    header.u32(t.shape.length);
    for (let d = t.shape.length - 1; d >= 0; d--) header.u64(t.shape[d]!);
    header.u32(GGML_TYPES[t.type]);
    header.u64(offset);
    offsets.push(offset);
    offset = alignUp(offset + t.data.length * BYTES_PER_ELEMENT[t.type], alignment);
  }
  header.padTo(alignment);
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, header.bytes());
    let written = 0;
    const pad = new Uint8Array(alignment);
    tensors.forEach((t, i) => {
      if (offsets[i]! > written) writeSync(fd, pad, 0, offsets[i]! - written);
      // Encode in chunks so a large embedding matrix does not need a second full-size buffer.
      const chunk = 1 << 20;
      const bytesPer = BYTES_PER_ELEMENT[t.type];
      const out = new Uint8Array(Math.min(chunk, t.data.length) * bytesPer);
      for (let start = 0; start < t.data.length; start += chunk) {
        const count = Math.min(chunk, t.data.length - start);
        const view = out.subarray(0, count * bytesPer);
        encodeFloats(t.type, t.data, start, count, view);
        writeSync(fd, view);
      }
      written = offsets[i]! + t.data.length * bytesPer;
    });
  } finally {
    closeSync(fd);
  }
}
