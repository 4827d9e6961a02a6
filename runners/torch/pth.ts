// A restricted reader of PyTorch `.pth` checkpoints (torch.save's zip format, torch/serialization.py
// _save): `<prefix>/data.pkl` is a pickle (protocol 2 by default) whose tensors point, through
// persistent ids, at raw little-endian storages `<prefix>/data/<key>`. Python's unpickler can call any
// global it names, which is how a malicious checkpoint runs code; this reader interprets only the
// opcodes a state dict needs and accepts only the globals that rebuild tensors and dicts (the same
// idea as torch.load(weights_only=True)). Any other global, or any other opcode, is an InputError
// naming it, before anything is built from it. Opcode semantics: Python's Lib/pickletools.py.
import { readFileSync } from 'node:fs';
import AdmZip from 'adm-zip';
import { InputError } from '../../results/errors.ts';

export type PthDtype = 'F32' | 'F16' | 'BF16';

export interface PthTensor {
  dtype: PthDtype;
  shape: number[];
  /** Contiguous row-major values, converted to float32. */
  data: Float32Array;
}

/** The globals a tensor state dict needs, and what each stands for. */
const STORAGE_TYPES: Record<string, { dtype: PthDtype; bytes: number }> = {
  'torch.FloatStorage': { dtype: 'F32', bytes: 4 },
  'torch.HalfStorage': { dtype: 'F16', bytes: 2 },
  'torch.BFloat16Storage': { dtype: 'BF16', bytes: 2 },
};
const REBUILD_TENSOR = 'torch._utils._rebuild_tensor_v2';
const ORDERED_DICT = 'collections.OrderedDict';
export const ALLOWED_GLOBALS: readonly string[] = [REBUILD_TENSOR, ORDERED_DICT, ...Object.keys(STORAGE_TYPES)];

class Global {
  constructor(readonly name: string) {}
}
class StorageRef {
  constructor(readonly dtype: PthDtype, readonly bytes: number, readonly key: string, readonly numel: number) {}
}
class Tuple {
  constructor(readonly items: unknown[]) {}
}
const MARK = Symbol('mark');

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Storage bytes as float32 values (little-endian, as torch writes on every supported host). */
function storageValues(ref: StorageRef, raw: Uint8Array, where: string): Float32Array {
  if (raw.byteLength < ref.numel * ref.bytes) throw new InputError(`${where}: storage ${ref.key} holds ${raw.byteLength} bytes, expected ${ref.numel} x ${ref.bytes} (truncated checkpoint?)`);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out = new Float32Array(ref.numel);
  for (let i = 0; i < ref.numel; i++) {
    if (ref.dtype === 'F32') out[i] = view.getFloat32(i * 4, true);
    else if (ref.dtype === 'F16') out[i] = halfToFloat(view.getUint16(i * 2, true));
    else out[i] = new Float32Array(new Uint32Array([view.getUint16(i * 2, true) << 16]).buffer)[0]!;
  }
  return out;
}

/** torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...): gathers a strided view. */
function rebuildTensor(args: unknown[], storage: (ref: StorageRef) => Float32Array, where: string): PthTensor {
  const [ref, offset, size, stride] = args;
  const ints = (v: unknown) => v instanceof Tuple && v.items.every((x) => Number.isInteger(x));
  if (!(ref instanceof StorageRef) || !Number.isInteger(offset) || !ints(size) || !ints(stride)) {
    throw new InputError(`${where}: malformed _rebuild_tensor_v2 arguments (expected storage, offset, size, stride)`);
  }
  const shape = (size as Tuple).items as number[];
  const strides = (stride as Tuple).items as number[];
  if (shape.length !== strides.length) throw new InputError(`${where}: tensor size and stride differ in rank`);
  const values = storage(ref);
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  const index = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    let at = offset as number;
    for (let d = 0; d < shape.length; d++) at += index[d]! * strides[d]!;
    if (at < 0 || at >= values.length) throw new InputError(`${where}: tensor view reaches element ${at} of storage ${ref.key}, which has ${values.length}`);
    data[i] = values[at]!;
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++index[d]! < shape[d]!) break;
      index[d] = 0;
    }
  }
  return { dtype: ref.dtype, shape, data };
}

/**
 * Runs the restricted unpickler over `pickle`; `storage(key)` returns the raw bytes of
 * `data/<key>`. Returns the unpickled root (dicts as Map, tensors as PthTensor).
 */
export function unpickleTensors(pickle: Uint8Array, storage: (key: string) => Uint8Array, where: string): unknown {
  const view = new DataView(pickle.buffer, pickle.byteOffset, pickle.byteLength);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  const storages = new Map<string, Float32Array>();
  let pos = 0;
  const fail = (what: string): never => {
    throw new InputError(`${where}: ${what} at byte ${pos} of the pickle; only tensor state dicts can be read (refusing to interpret anything else)`);
  };
  const need = (n: number) => (pos + n <= pickle.length ? pos : fail('truncated pickle'));
  const u8 = () => {
    need(1);
    return pickle[pos++]!;
  };
  const u32 = () => { need(4); const v = view.getUint32(pos, true); pos += 4; return v; };
  const bytes = (n: number) => { need(n); const b = pickle.subarray(pos, pos + n); pos += n; return b; };
  const line = () => {
    const end = pickle.indexOf(0x0a, pos);
    if (end < 0) fail('truncated pickle (unterminated GLOBAL)');
    const s = decoder.decode(pickle.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = () => (stack.length > 0 ? stack.pop() : fail('stack underflow'));
  const popMark = (): unknown[] => {
    const at = stack.lastIndexOf(MARK);
    if (at < 0) fail('missing MARK');
    return stack.splice(at).slice(1);
  };
  const global = (module: string, name: string): Global => {
    const full = `${module}.${name}`;
    if (!ALLOWED_GLOBALS.includes(full)) {
      throw new InputError(`${where}: refusing pickle global "${full}" (a checkpoint may only name ${ALLOWED_GLOBALS.join(', ')}); the file is not a plain tensor checkpoint and may be malicious`);
    }
    return new Global(full);
  };
  const setItems = (dict: unknown, items: unknown[]) => {
    if (!(dict instanceof Map)) fail('SETITEM(S) on a non-dict');
    for (let i = 0; i + 1 < items.length; i += 2) (dict as Map<unknown, unknown>).set(items[i], items[i + 1]);
  };
  const storageOf = (ref: StorageRef): Float32Array => {
    let values = storages.get(ref.key);
    if (!values) {
      values = storageValues(ref, storage(ref.key), where);
      storages.set(ref.key, values);
    }
    return values;
  };
  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: bytes(8); break; // FRAME (protocol 4): framing only
      case 0x2e: return pop(); // STOP
      case 0x28: stack.push(MARK); break; // MARK
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x29: stack.push(new Tuple([])); break; // EMPTY_TUPLE
      case 0x74: stack.push(new Tuple(popMark())); break; // TUPLE
      case 0x85: stack.push(new Tuple([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(); stack.push(new Tuple([pop(), b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); stack.push(new Tuple([pop(), b, c])); break; } // TUPLE3
      case 0x71: memo.set(u8(), stack.at(-1)); break; // BINPUT
      case 0x72: memo.set(u32(), stack.at(-1)); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, stack.at(-1)); break; // MEMOIZE
      case 0x68: case 0x6a: { // BINGET, LONG_BINGET
        const key = op === 0x68 ? u8() : u32();
        if (!memo.has(key)) fail(`memo ${key} read before it is written`);
        stack.push(memo.get(key));
        break;
      }
      case 0x4a: { need(4); stack.push(view.getInt32(pos, true)); pos += 4; break; } // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: { need(2); stack.push(view.getUint16(pos, true)); pos += 2; break; } // BININT2
      case 0x8a: { // LONG1: little-endian two's complement
        const b = bytes(u8());
        let v = 0n;
        for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
        if (b.length > 0 && b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
        stack.push(Number(v));
        break;
      }
      case 0x47: { need(8); stack.push(view.getFloat64(pos, false)); pos += 8; break; } // BINFLOAT (big-endian)
      case 0x58: stack.push(decoder.decode(bytes(u32()))); break; // BINUNICODE
      case 0x8c: stack.push(decoder.decode(bytes(u8()))); break; // SHORT_BINUNICODE
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x63: { const module = line(); stack.push(global(module, line())); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL without string names');
        stack.push(global(module as string, name as string));
        break;
      }
      case 0x51: { // BINPERSID: ('storage', StorageType, key, location, numel)
        const pid = pop();
        const items = pid instanceof Tuple ? pid.items : [];
        const [tag, type, key, , numel] = items;
        const st = type instanceof Global ? STORAGE_TYPES[type.name] : undefined;
        if (tag !== 'storage' || !st || typeof key !== 'string' || !Number.isInteger(numel)) fail('unsupported persistent id (expected a torch storage)');
        stack.push(new StorageRef(st!.dtype, st!.bytes, key as string, numel as number));
        break;
      }
      case 0x52: { // REDUCE: only the allowed globals can be called
        const args = pop();
        const fn = pop();
        if (!(fn instanceof Global) || !(args instanceof Tuple)) fail('REDUCE on something other than an allowed global');
        const g = fn as Global;
        if (g.name === ORDERED_DICT) stack.push(new Map());
        else if (g.name === REBUILD_TENSOR) stack.push(rebuildTensor((args as Tuple).items, storageOf, where));
        else fail(`calling ${g.name}`);
        break;
      }
      case 0x62: { // BUILD: OrderedDict state (state_dict's _metadata) is dropped
        pop();
        if (!(stack.at(-1) instanceof Map)) fail('BUILD on a non-dict');
        break;
      }
      case 0x73: { const v = pop(); const k = pop(); setItems(stack.at(-1), [k, v]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(stack.at(-1), items); break; } // SETITEMS
      case 0x61: { const v = pop(); const list = stack.at(-1); if (!Array.isArray(list)) fail('APPEND on a non-list'); (list as unknown[]).push(v); break; } // APPEND
      case 0x65: { const items = popMark(); const list = stack.at(-1); if (!Array.isArray(list)) fail('APPENDS on a non-list'); (list as unknown[]).push(...items); break; } // APPENDS
      default:
        fail(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')}`);
    }
  }
}

/** Tensors of a nested dict, with keys joined by '.' (`{'model': {'w': t}}` gives `model.w`). */
function flatten(value: unknown, prefix: string, out: Map<string, PthTensor>): void {
  if (value instanceof Map) {
    for (const [k, v] of value) flatten(v, prefix === '' ? String(k) : `${prefix}.${String(k)}`, out);
  } else if (value !== null && typeof value === 'object' && 'data' in value && (value as PthTensor).data instanceof Float32Array) {
    out.set(prefix, value as PthTensor);
  }
}

/** The tensors of a torch.save zip checkpoint, by (flattened) state-dict name. */
export function readPth(path: string): Map<string, PthTensor> {
  let zip: AdmZip;
  try {
    zip = new AdmZip(readFileSync(path));
  } catch (e) {
    const legacy = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : 'not a zip archive (legacy pre-1.6 torch.save files are not supported; re-save with torch>=1.6)';
    throw new InputError(`${path}: ${legacy}`);
  }
  const entries = zip.getEntries();
  const pkl = entries.find((e) => /^[^/]+\/data\.pkl$/.test(e.entryName));
  if (!pkl) throw new InputError(`${path}: no <archive>/data.pkl entry; not a torch.save checkpoint`);
  const prefix = pkl.entryName.slice(0, -'data.pkl'.length);
  const order = zip.getEntry(`${prefix}byteorder`);
  if (order && order.getData().toString('latin1').trim() !== 'little') throw new InputError(`${path}: big-endian checkpoint; re-save it on a little-endian host`);
  const storage = (key: string): Uint8Array => {
    const entry = zip.getEntry(`${prefix}data/${key}`);
    if (!entry) throw new InputError(`${path}: storage ${prefix}data/${key} named by the pickle is missing`);
    return entry.getData();
  };
  const out = new Map<string, PthTensor>();
  flatten(unpickleTensors(pkl.getData(), storage, path), '', out);
  return out;
}
