// The restricted .pth reader on checkpoints written byte by byte (./torch-pickle.ts: pickle
// protocol-2 opcodes in the order torch.save emits them).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../results/errors.ts';
import { readPth, unpickleTensors } from '../../runners/torch/pth.ts';
import { globalOp, int, MARK, pickleDict, REDUCE, str, tensor, utf8, writePthFile } from './torch-pickle.ts';

// Storage "0": float32 [[1.5, -2, 0.25], [3, 4.5, -0.125]] (all exactly representable).
const F32_VALUES = [1.5, -2, 0.25, 3, 4.5, -0.125];
const f32Bytes = new Uint8Array(Float32Array.from(F32_VALUES).buffer);
// Storage "1": binary16 bit patterns with values from IEEE 754 (1.0, -2.0, 1/3 rounded, max 65504,
// smallest subnormal 2^-24).
const F16_BITS = [0x3c00, 0xc000, 0x3555, 0x7bff, 0x0001];
const F16_VALUES = [1, -2, 0.333251953125, 65504, 5.960464477539063e-8];
// Storage "2": bfloat16 = the top 16 bits of a float32: 0x3f80 = 1.0, 0x4049 = 3.140625, 0xc2f7 = -123.5.
const BF16_BITS = [0x3f80, 0x4049, 0xc2f7];
const BF16_VALUES = [1, 3.140625, -123.5];
const u16Bytes = (bits: number[]) => new Uint8Array(Uint16Array.from(bits).buffer);

const STORAGES: Record<string, Uint8Array> = { '0': f32Bytes, '1': u16Bytes(F16_BITS), '2': u16Bytes(BF16_BITS) };
const storage = (key: string) => STORAGES[key]!;

const STATE_DICT = pickleDict([
  ['w', tensor('FloatStorage', '0', 6, 0, [2, 3], [3, 1])],
  // A transposed view of the same storage, and a view at an offset.
  ['w_t', tensor('FloatStorage', '0', 6, 0, [3, 2], [1, 3])],
  ['row1', tensor('FloatStorage', '0', 6, 3, [3], [1])],
  ['h', tensor('HalfStorage', '1', 5, 0, [5], [1])],
  ['b', tensor('BFloat16Storage', '2', 3, 0, [1, 3], [3, 1])],
]);

const dir = mkdtempSync(join(tmpdir(), 'pth-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const writePth = (name: string, pickle: Uint8Array, prefix = 'archive') => writePthFile(join(dir, name), pickle, STORAGES, prefix);

describe('restricted .pth reader', () => {
  it('rebuilds float32, float16 and bfloat16 tensors, strided views included', () => {
    const tensors = readPth(writePth('state.pth', STATE_DICT));
    expect([...tensors.keys()]).toEqual(['w', 'w_t', 'row1', 'h', 'b']);
    expect(tensors.get('w')).toEqual({ dtype: 'F32', shape: [2, 3], data: Float32Array.from(F32_VALUES) });
    expect(Array.from(tensors.get('w_t')!.data)).toEqual([1.5, 3, -2, 4.5, 0.25, -0.125]);
    expect(Array.from(tensors.get('row1')!.data)).toEqual([3, 4.5, -0.125]);
    expect(tensors.get('h')!.dtype).toBe('F16');
    expect(Array.from(tensors.get('h')!.data)).toEqual(F16_VALUES.map(Math.fround));
    expect(tensors.get('b')).toEqual({ dtype: 'BF16', shape: [1, 3], data: Float32Array.from(BF16_VALUES) });
  });

  it('flattens nested dicts (a training checkpoint {"model": state_dict}) and any archive prefix', () => {
    const nested = Uint8Array.from([0x80, 2, 0x7d, ...str('model'), 0x7d, ...str('x'), ...tensor('FloatStorage', '0', 6, 1, [2], [2]), 0x73, ...str('epoch'), ...int(4), 0x73, 0x73, 0x2e]);
    const tensors = readPth(writePth('nested.pth', nested, 'checkpoint-4'));
    expect([...tensors.keys()]).toEqual(['model.x']);
    expect(Array.from(tensors.get('model.x')!.data)).toEqual([-2, 3]);
  });

  it('refuses an os.system global before anything runs', () => {
    // pickle.dumps of a class whose __reduce__ returns (os.system, ('touch pwned',)), protocol 2.
    const evil = Uint8Array.from([0x80, 2, ...globalOp('os', 'system'), ...str('touch pwned'), 0x85, REDUCE, 0x2e]);
    expect(() => unpickleTensors(evil, storage, 'evil.pth')).toThrow(InputError);
    expect(() => unpickleTensors(evil, storage, 'evil.pth')).toThrow(/refusing pickle global "os\.system"/);
    expect(() => readPth(writePth('evil.pth', evil))).toThrow(/os\.system/);
  });

  it('refuses STACK_GLOBAL builtins.eval, unknown opcodes, and calling an allowed non-callable', () => {
    const stackGlobal = Uint8Array.from([0x80, 4, 0x8c, 8, ...utf8('builtins'), 0x8c, 4, ...utf8('eval'), 0x93, 0x2e]);
    expect(() => unpickleTensors(stackGlobal, storage, 'x')).toThrow(/builtins\.eval/);
    const inst = Uint8Array.from([0x80, 2, MARK, 0x69, ...utf8('os\nsystem\n'), 0x2e]); // INST
    expect(() => unpickleTensors(inst, storage, 'x')).toThrow(/unsupported pickle opcode 0x69/);
    const callStorage = Uint8Array.from([0x80, 2, ...globalOp('torch', 'FloatStorage'), 0x29, REDUCE, 0x2e]);
    expect(() => unpickleTensors(callStorage, storage, 'x')).toThrow(/calling torch\.FloatStorage/);
  });

  it('reports truncated pickles, missing storages and files that are not torch zips', () => {
    expect(() => unpickleTensors(STATE_DICT.subarray(0, 40), storage, 'x')).toThrow(/truncated pickle/);
    expect(() => unpickleTensors(STATE_DICT, () => new Uint8Array(4), 'x')).toThrow(/storage 0 holds 4 bytes/);
    const notZip = join(dir, 'legacy.pth');
    writeFileSync(notZip, Uint8Array.from([0x80, 2, 0x7d, 0x2e]));
    expect(() => readPth(notZip)).toThrow(/not a zip archive/);
    expect(() => readPth(join(dir, 'missing.pth'))).toThrow(/not found/);
  });
});
