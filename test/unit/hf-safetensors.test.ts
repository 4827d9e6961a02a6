// safetensors read/write, float16/bfloat16 conversion, sharded checkpoints, and the one-line errors
// for bad files (DESIGN.md "Errors": file and byte offset, or the tensor's name).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bf16BitsToNumber, f16BitsToNumber, numberToBf16Bits, numberToF16Bits } from '../../runners/hf/dtype.ts';
import { SafetensorsFile, writeSafetensors } from '../../runners/hf/safetensors.ts';
import { CheckpointWeights, writeCheckpointWeights } from '../../runners/hf/weights.ts';
import { InputError } from '../../harness/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'hf-safetensors-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A hand-built safetensors file: 8-byte LE header length, header JSON, data. */
function rawFile(name: string, header: string, data: Uint8Array = new Uint8Array(0), lengthOverride?: bigint): string {
  const h = new TextEncoder().encode(header);
  const buf = new Uint8Array(8 + h.length + data.length);
  new DataView(buf.buffer).setBigUint64(0, lengthOverride ?? BigInt(h.length), true);
  buf.set(h, 8);
  buf.set(data, 8 + h.length);
  const path = join(dir, name);
  writeFileSync(path, buf);
  return path;
}

function errorOf(fn: () => unknown): InputError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).not.toContain('\n'); // one line
    return error as InputError;
  }
  throw new Error('expected an InputError');
}

describe('float16 / bfloat16 bits', () => {
  // IEEE 754-2008 binary16 table values: 1.0 = 0x3C00, -2.0 = 0xC000, 65504 (max) = 0x7BFF,
  // 2^-24 (smallest subnormal) = 0x0001, 2^-14 (smallest normal) = 0x0400.
  it.each([
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [2 ** -24, 0x0001],
    [2 ** -14, 0x0400],
    [0, 0x0000],
  ])('%d <-> 0x%s as float16', (value, bits) => {
    expect(numberToF16Bits(value)).toBe(bits);
    expect(f16BitsToNumber(bits)).toBe(value);
  });

  it('rounds to nearest even and overflows to infinity', () => {
    // 1 + 2^-11 is halfway between 1 (0x3C00, even) and 1 + 2^-10 (0x3C01): ties go to even.
    expect(numberToF16Bits(1 + 2 ** -11)).toBe(0x3c00);
    // 1 + 3*2^-11 is halfway between 0x3C01 and 0x3C02 (even).
    expect(numberToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(numberToF16Bits(70000)).toBe(0x7c00); // > 65520 rounds to +Inf
    expect(Number.isNaN(f16BitsToNumber(numberToF16Bits(NaN)))).toBe(true);
  });

  it('bfloat16 is the top half of float32, rounded to nearest even', () => {
    // float32 1.0 = 0x3F800000 -> bf16 0x3F80; pi = 0x40490FDB -> 0x4049 (0x0FDB < 0x8000 rounds down).
    expect(numberToBf16Bits(1)).toBe(0x3f80);
    expect(numberToBf16Bits(Math.PI)).toBe(0x4049);
    expect(bf16BitsToNumber(0x4049)).toBe(3.140625); // 0x4049 = 1.5703125 * 2
    // 1 + 2^-8 is halfway between bf16 1.0 (0x3F80) and 1 + 2^-7 (0x3F81): ties to even.
    expect(numberToBf16Bits(1 + 2 ** -8)).toBe(0x3f80);
  });
});

describe('safetensors files', () => {
  const data = Float32Array.from([0.5, -1.25, 3, 1e-3, 65504, -0.0078125]);

  it.each(['F32', 'F16', 'BF16'] as const)('round-trips %s tensors with their header', (dtype) => {
    const path = join(dir, `rt-${dtype}.safetensors`);
    writeSafetensors(path, [{ name: 'a', shape: [2, 3], data }, { name: 'b', shape: [1], data: Float32Array.from([7]) }], dtype, { format: 'pt' });
    const file = SafetensorsFile.open(path);
    expect(file.info('a')).toMatchObject({ dtype, shape: [2, 3] });
    expect(file.metadata).toEqual({ format: 'pt' });
    const back = file.readFloat32('a', { expectShape: [2, 3] });
    const expected = Array.from(data, (x) => (dtype === 'F32' ? Math.fround(x) : dtype === 'F16' ? f16BitsToNumber(numberToF16Bits(x)) : bf16BitsToNumber(numberToBf16Bits(x))));
    expect(Array.from(back)).toEqual(expected);
    expect(Array.from(file.readFloat32('b'))).toEqual([7]);
    file.close();
    // The header is padded to a multiple of 8 bytes so the data is aligned (as the Rust writer does).
    const headerLen = Number(readFileSync(path).readBigUInt64LE(0));
    expect(headerLen % 8).toBe(0);
  });

  it('converts a 16-bit tensor larger than one conversion chunk', () => {
    const n = (1 << 18) + 5; // one chunk is 2^18 elements
    const big = Float32Array.from({ length: n }, (_, i) => (i % 97) / 8);
    const path = join(dir, 'big.safetensors');
    writeSafetensors(path, [{ name: 'w', shape: [n], data: big }], 'BF16');
    const back = SafetensorsFile.open(path).readFloat32('w');
    expect(back.length).toBe(n);
    expect(back[n - 1]).toBe(((n - 1) % 97) / 8); // multiples of 1/8 below 12 are exact in bf16
  });

  it('a truncated header names the file and byte offset', () => {
    const path = rawFile('short.safetensors', '', new Uint8Array(0), 0n);
    writeFileSync(path, new Uint8Array([1, 2, 3]));
    expect(errorOf(() => SafetensorsFile.open(path)).message).toBe(`${path}: truncated safetensors file: 3 bytes, the 8-byte header length at byte offset 0 is incomplete`);
    const runs = rawFile('runs-past.safetensors', '{"a":', new Uint8Array(0), 4096n);
    expect(errorOf(() => SafetensorsFile.open(runs)).message).toBe(`${runs}: truncated safetensors header: header length 4096 at byte offset 0 runs past the end of the 13-byte file`);
  });

  it('corrupt header JSON names the byte offset of the bad character', () => {
    const path = rawFile('corrupt.safetensors', '{"a": {"dtype": "F32", }');
    const message = errorOf(() => SafetensorsFile.open(path)).message;
    // The stray "}" is at index 23 of the JSON, i.e. byte 8 + 23 = 31 of the file.
    expect(message).toMatch(new RegExp(`^${path}: corrupt safetensors header: invalid JSON at byte offset 31 `));
  });

  it('a tensor past the end of the file is out of bounds, named', () => {
    const path = rawFile('oob.safetensors', '{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', new Uint8Array(8));
    expect(errorOf(() => SafetensorsFile.open(path)).message).toMatch(/tensor "w" is out of bounds: data ends at byte offset \d+ but the file has \d+ bytes/);
  });

  it('a tensor whose byte span disagrees with its dtype and shape is named', () => {
    const path = rawFile('span.safetensors', '{"w":{"dtype":"F16","shape":[4],"data_offsets":[0,16]}}', new Uint8Array(16));
    expect(errorOf(() => SafetensorsFile.open(path)).message).toContain('tensor "w" spans 16 bytes but F16 [4] needs 8');
  });

  it('a wrong shape and a non-float dtype are errors naming the tensor', () => {
    const path = join(dir, 'shape.safetensors');
    writeSafetensors(path, [{ name: 'model.norm.weight', shape: [4], data: new Float32Array(4) }]);
    const file = SafetensorsFile.open(path);
    expect(errorOf(() => file.readFloat32('model.norm.weight', { expectShape: [8] })).message).toBe(
      `${path}: tensor "model.norm.weight" has shape [4], expected [8] from config.json`,
    );
    const ints = rawFile('ints.safetensors', '{"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}', new Uint8Array(8));
    expect(errorOf(() => SafetensorsFile.open(ints).readFloat32('ids')).message).toBe(`${ints}: tensor "ids" has dtype I64; expected a floating-point weight (F32, F16 or BF16)`);
  });
});

describe('sharded checkpoints', () => {
  const tensors = ['a', 'b', 'c', 'd'].map((name, i) => ({ name, shape: [3], data: Float32Array.from([i, i + 0.5, -i]) }));

  it('writes 3 shards with an index and reads every tensor back', () => {
    const ckpt = mkdtempSync(join(dir, 'sharded-'));
    writeCheckpointWeights(ckpt, tensors, 'BF16', 3);
    const index = JSON.parse(readFileSync(join(ckpt, 'model.safetensors.index.json'), 'utf8'));
    expect(new Set(Object.values(index.weight_map))).toEqual(new Set(['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors']));
    expect(index.metadata.total_size).toBe(4 * 3 * 2); // 4 tensors x 3 values x 2 bytes
    const weights = CheckpointWeights.open(ckpt);
    expect(weights.names().sort()).toEqual(['a', 'b', 'c', 'd']);
    for (const t of tensors) expect(Array.from(weights.readFloat32(t.name))).toEqual(Array.from(t.data));
    weights.close();
  });

  it('a missing shard is an InputError naming it', () => {
    const ckpt = mkdtempSync(join(dir, 'missing-'));
    writeCheckpointWeights(ckpt, tensors, 'F32', 2);
    rmSync(join(ckpt, 'model-00002-of-00002.safetensors'));
    expect(errorOf(() => CheckpointWeights.open(ckpt)).message).toBe(
      `${join(ckpt, 'model-00002-of-00002.safetensors')}: missing shard named by model.safetensors.index.json (incomplete download? fetch every model-*.safetensors file)`,
    );
  });

  it('a directory without weights says what it looked for', () => {
    const empty = mkdtempSync(join(dir, 'empty-'));
    expect(errorOf(() => CheckpointWeights.open(empty)).message).toMatch(/no weights: looked for model\.safetensors and model\.safetensors\.index\.json/);
  });
});
