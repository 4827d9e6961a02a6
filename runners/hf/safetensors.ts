// The safetensors format (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
// length N, N bytes of JSON `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?}`,
// then the data buffer; offsets are relative to the end of the header.
//
// Reading goes through a file descriptor, one tensor at a time, so a checkpoint larger than memory
// can be walked; float16/bfloat16 tensors are converted in bounded chunks straight into their
// Float32Array, so a large tensor never exists twice in float32.
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { InputError } from '../../results/errors.ts';
import {
  DTYPE_BYTES,
  SAFETENSORS_DTYPES,
  decodeFloats,
  encodeFloats,
  isFloatDtype,
  type FloatDtype,
  type SafetensorsDtype,
} from './dtype.ts';

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Absolute byte offsets in the file (header already accounted for). */
  begin: number;
  end: number;
}

/** A tensor's length in elements. */
export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

// Headers of real checkpoints are a few hundred KiB (Llama-3.1-405B's largest shard: ~40 KiB);
// anything past 100 MiB is a corrupt length field, not a header (the Rust crate uses the same cap).
const MAX_HEADER_BYTES = 100_000_000;
// Conversion chunk for 16-bit tensors: bounds the scratch buffer, independent of tensor size.
const CHUNK_ELEMENTS = 1 << 18;

function readExactly(fd: number, buf: Uint8Array, position: number, file: string): void {
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, buf.length - done, position + done);
    if (n === 0) throw new InputError(`${file}: truncated: expected ${buf.length} bytes at byte offset ${position}, file ends at ${position + done}`);
    done += n;
  }
}

/** Parses and validates the header of an open safetensors file. */
function parseHeader(fd: number, file: string): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  const size = fstatSync(fd).size;
  if (size < 8) throw new InputError(`${file}: truncated safetensors file: ${size} bytes, the 8-byte header length at byte offset 0 is incomplete`);
  const lenBuf = new Uint8Array(8);
  readExactly(fd, lenBuf, 0, file);
  const headerLen = Number(new DataView(lenBuf.buffer).getBigUint64(0, true));
  if (headerLen > MAX_HEADER_BYTES) {
    throw new InputError(`${file}: corrupt safetensors header: header length ${headerLen} at byte offset 0 exceeds the ${MAX_HEADER_BYTES}-byte limit (not a safetensors file?)`);
  }
  if (8 + headerLen > size) {
    throw new InputError(`${file}: truncated safetensors header: header length ${headerLen} at byte offset 0 runs past the end of the ${size}-byte file`);
  }
  const headerBuf = new Uint8Array(headerLen);
  readExactly(fd, headerBuf, 8, file);
  const text = new TextDecoder('utf-8').decode(headerBuf);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    // V8 says "... at position 17"; report the absolute file offset of that byte.
    const pos = /position (\d+)/.exec((error as Error).message)?.[1];
    const where = pos === undefined ? `between byte offsets 8 and ${8 + headerLen}` : `at byte offset ${8 + Number(pos)}`;
    throw new InputError(`${file}: corrupt safetensors header: invalid JSON ${where} (${(error as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new InputError(`${file}: corrupt safetensors header: expected a JSON object at byte offset 8`);
  }
  const dataStart = 8 + headerLen;
  const dataSize = size - dataStart;
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = (raw ?? {}) as Record<string, string>;
      continue;
    }
    const entry = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const bad = (what: string) => new InputError(`${file}: corrupt safetensors header: tensor "${name}" ${what}`);
    if (typeof entry !== 'object' || entry === null) throw bad('is not an object');
    if (typeof entry.dtype !== 'string' || !(SAFETENSORS_DTYPES as readonly string[]).includes(entry.dtype)) {
      throw bad(`has unknown dtype ${JSON.stringify(entry.dtype)} (known: ${SAFETENSORS_DTYPES.join(', ')})`);
    }
    const shape = entry.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) throw bad(`has a bad shape ${JSON.stringify(shape)}`);
    const offsets = entry.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((d) => Number.isInteger(d) && d >= 0) || offsets[0] > offsets[1]) {
      throw bad(`has bad data_offsets ${JSON.stringify(offsets)}`);
    }
    const dtype = entry.dtype as SafetensorsDtype;
    const [begin, end] = offsets as [number, number];
    const expected = numel(shape as number[]) * DTYPE_BYTES[dtype];
    if (end - begin !== expected) {
      throw bad(`spans ${end - begin} bytes but ${dtype} ${JSON.stringify(shape)} needs ${expected}`);
    }
    if (end > dataSize) {
      throw new InputError(`${file}: tensor "${name}" is out of bounds: data ends at byte offset ${dataStart + end} but the file has ${size} bytes (truncated download?)`);
    }
    tensors.set(name, { name, dtype, shape: shape as number[], begin: dataStart + begin, end: dataStart + end });
  }
  return { tensors, metadata };
}

export interface ReadOptions {
  /** When given, a tensor of another shape is an InputError naming it. */
  expectShape?: readonly number[];
}

/** One open safetensors file; tensors are read on demand. Call `close()` when done. */
export class SafetensorsFile {
  readonly tensors: Map<string, TensorInfo>;
  readonly metadata: Record<string, string>;
  private fd: number | null;

  private constructor(readonly path: string, fd: number) {
    this.fd = fd;
    try {
      const { tensors, metadata } = parseHeader(fd, path);
      this.tensors = tensors;
      this.metadata = metadata;
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  static open(path: string): SafetensorsFile {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (error) {
      throw new InputError(`${path}: cannot open safetensors file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
    return new SafetensorsFile(path, fd);
  }

  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new InputError(`${this.path}: no tensor "${name}" in this file`);
    return info;
  }

  private checkShape(info: TensorInfo, options: ReadOptions): void {
    const want = options.expectShape;
    if (want && (want.length !== info.shape.length || want.some((d, i) => d !== info.shape[i]))) {
      throw new InputError(`${this.path}: tensor "${info.name}" has shape [${info.shape.join(', ')}], expected [${want.join(', ')}] from config.json`);
    }
  }

  /** The tensor's raw little-endian bytes (e.g. to hand float16 weights to a graph unchanged). */
  readBytes(name: string, options: ReadOptions = {}): Uint8Array {
    const info = this.info(name);
    this.checkShape(info, options);
    const out = new Uint8Array(info.end - info.begin);
    readExactly(this.openFd(), out, info.begin, this.path);
    return out;
  }

  /** The tensor as float32 (F32, F16 and BF16 tensors). */
  readFloat32(name: string, options: ReadOptions = {}): Float32Array {
    const info = this.info(name);
    this.checkShape(info, options);
    if (!isFloatDtype(info.dtype)) {
      throw new InputError(`${this.path}: tensor "${name}" has dtype ${info.dtype}; expected a floating-point weight (F32, F16 or BF16)`);
    }
    const count = numel(info.shape);
    const out = new Float32Array(count);
    const fd = this.openFd();
    if (info.dtype === 'F32') {
      // Read straight into the result's memory; safetensors is little-endian like every host we run on.
      readExactly(fd, new Uint8Array(out.buffer), info.begin, this.path);
      return out;
    }
    const bytes = DTYPE_BYTES[info.dtype];
    const scratch = new Uint8Array(Math.min(count, CHUNK_ELEMENTS) * bytes);
    for (let start = 0; start < count; start += CHUNK_ELEMENTS) {
      const n = Math.min(CHUNK_ELEMENTS, count - start);
      const chunk = scratch.subarray(0, n * bytes);
      readExactly(fd, chunk, info.begin + start * bytes, this.path);
      decodeFloats(info.dtype, chunk, out, start, n);
    }
    return out;
  }

  private openFd(): number {
    if (this.fd === null) throw new Error(`${this.path}: read after close()`);
    return this.fd;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

export interface TensorToWrite {
  name: string;
  shape: readonly number[];
  data: Float32Array;
}

/**
 * Writes float32 data as a safetensors file in `dtype`. Tensors are laid out in the order given
 * and encoded chunk by chunk, so writing adds no full-size copy of any tensor.
 */
export function writeSafetensors(path: string, tensors: readonly TensorToWrite[], dtype: FloatDtype = 'F32', metadata: Record<string, string> = {}): void {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    if (numel(t.shape) !== t.data.length) {
      throw new Error(`writeSafetensors: tensor "${t.name}" has ${t.data.length} values for shape [${t.shape.join(', ')}]`);
    }
    const size = t.data.length * DTYPE_BYTES[dtype];
    header[t.name] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + size] };
    offset += size;
  }
  // The reference writer pads the JSON with spaces to a multiple of 8 so the data is aligned.
  let json = JSON.stringify(header);
  const encoder = new TextEncoder();
  const pad = (8 - (encoder.encode(json).length % 8)) % 8;
  json += ' '.repeat(pad);
  const headerBytes = encoder.encode(json);
  const lenBytes = new Uint8Array(8);
  new DataView(lenBytes.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, lenBytes);
    writeSync(fd, headerBytes);
    const bytes = DTYPE_BYTES[dtype];
    const scratch = new Uint8Array(CHUNK_ELEMENTS * bytes);
    for (const t of tensors) {
      for (let start = 0; start < t.data.length; start += CHUNK_ELEMENTS) {
        const n = Math.min(CHUNK_ELEMENTS, t.data.length - start);
        const chunk = scratch.subarray(0, n * bytes);
        encodeFloats(dtype, t.data, start, n, chunk);
        writeSync(fd, chunk);
      }
    }
  } finally {
    closeSync(fd);
  }
}
