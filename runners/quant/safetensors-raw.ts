// A safetensors writer for tensors of any dtype given as raw little-endian bytes: bitsandbytes'
// 4-bit checkpoints mix U8 (packed codes, 8-bit absmax, the JSON quant state) with F32 tensors,
// which runners/hf/safetensors.ts's float-only writer does not cover. Same layout rules as the
// reference writer (https://huggingface.co/docs/safetensors): header padded with spaces to a
// multiple of 8, data in the order given.
import { closeSync, openSync, writeSync } from 'node:fs';
import { DTYPE_BYTES, type SafetensorsDtype } from '../hf/dtype.ts';

export interface RawTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: readonly number[];
  bytes: Uint8Array;
}

/** Little-endian bytes of a Float32Array (a view, no copy; every host we run on is little-endian). */
export function f32Bytes(data: Float32Array): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export function writeRawSafetensors(path: string, tensors: readonly RawTensor[], metadata: Record<string, string> = { format: 'pt' }): void {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const expected = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
    if (expected !== t.bytes.length) {
      throw new Error(`writeRawSafetensors: tensor "${t.name}" has ${t.bytes.length} bytes for ${t.dtype} [${t.shape.join(', ')}] (needs ${expected})`);
    }
    header[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + t.bytes.length] };
    offset += t.bytes.length;
  }
  const encoder = new TextEncoder();
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (encoder.encode(json).length % 8)) % 8);
  const headerBytes = encoder.encode(json);
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, len);
    writeSync(fd, headerBytes);
    for (const t of tensors) writeSync(fd, t.bytes);
  } finally {
    closeSync(fd);
  }
}
