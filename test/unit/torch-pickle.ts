// Hand-written torch.save pickles for the .pth reader's tests, byte by byte from the pickle
// protocol-2 opcodes (Python Lib/pickletools.py) in the order torch.save emits them
// (torch/serialization.py _save: persistent_id ('storage', <Type>Storage, key, 'cpu', numel), then
// torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, OrderedDict())).
import { writeFileSync } from 'node:fs';
import AdmZip from 'adm-zip';

export const utf8 = (s: string) => [...new TextEncoder().encode(s)];
export const u32 = (n: number) => [n & 255, (n >> 8) & 255, (n >> 16) & 255, n >>> 24];
export const str = (s: string) => [0x58, ...u32(utf8(s).length), ...utf8(s)]; // BINUNICODE
export const int = (n: number) => (n < 256 ? [0x4b, n] : [0x4a, ...u32(n)]); // BININT1 / BININT
export const globalOp = (module: string, name: string) => [0x63, ...utf8(`${module}\n${name}\n`)]; // GLOBAL
export const MARK = 0x28;
export const TUPLE = 0x74;
export const REDUCE = 0x52;

export function tensor(storageType: string, key: string, numel: number, offset: number, size: number[], stride: number[]): number[] {
  return [
    ...globalOp('torch._utils', '_rebuild_tensor_v2'), MARK,
    MARK, ...str('storage'), ...globalOp('torch', storageType), ...str(key), ...str('cpu'), ...int(numel), TUPLE, 0x51, // BINPERSID
    ...int(offset), MARK, ...size.flatMap(int), TUPLE, MARK, ...stride.flatMap(int), TUPLE,
    0x89, // NEWFALSE: requires_grad
    ...globalOp('collections', 'OrderedDict'), 0x29, REDUCE, // backward_hooks = OrderedDict()
    TUPLE, REDUCE,
  ];
}

/** PROTO 2, a dict of name -> pickled value, STOP. */
export function pickleDict(entries: [string, number[]][]): Uint8Array {
  return Uint8Array.from([0x80, 2, 0x7d, 0x71, 0, MARK, ...entries.flatMap(([k, v]) => [...str(k), ...v]), 0x75, 0x2e]);
}


/** A torch.save zip: `<prefix>/data.pkl`, `<prefix>/byteorder`, `<prefix>/data/<key>` per storage. */
export function writePthFile(path: string, pickle: Uint8Array, storages: Record<string, Uint8Array>, prefix = 'archive'): string {
  const zip = new AdmZip();
  zip.addFile(`${prefix}/data.pkl`, Buffer.from(pickle));
  zip.addFile(`${prefix}/byteorder`, Buffer.from('little'));
  for (const [key, bytes] of Object.entries(storages)) zip.addFile(`${prefix}/data/${key}`, Buffer.from(bytes));
  writeFileSync(path, zip.toBuffer());
  return path;
}
