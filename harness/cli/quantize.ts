// `llama-eval quantize`: an NF4 (double-quant) checkpoint that transformers + bitsandbytes load as a
// 4-bit model and runners/quant reads back (loadReferenceFromNf4Checkpoint).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { InputError } from '../errors.ts';
import { openCheckpoint } from '../../runners/hf/checkpoint.ts';
import { writeNf4Checkpoint } from '../../runners/quant/nf4-checkpoint.ts';
import type { CliIO } from './command.ts';
import { humanBytes, printJson, printTable } from './output.ts';

function dirBytes(dir: string): number {
  return readdirSync(dir).filter((f) => f.endsWith('.safetensors')).reduce((s, f) => s + statSync(join(dir, f)).size, 0);
}

export async function run(args: Record<string, unknown>, io: CliIO): Promise<number> {
  if (args.to !== undefined && args.to !== 'nf4') throw new InputError(`--to ${String(args.to)}: unsupported format (supported: nf4)`);
  const out = resolve(String(args.out));
  if (existsSync(out) && (!statSync(out).isDirectory() || readdirSync(out).length > 0)) {
    throw new InputError(`--out ${out}: already exists and is not an empty directory (choose a new directory)`);
  }
  const checkpoint = await openCheckpoint(String(args.model), { offline: args.offline === true });
  const quantized = writeNf4Checkpoint(checkpoint, out);
  const result = { out, quantized_tensors: quantized.length, bytes_in: dirBytes(checkpoint.dir), bytes_out: dirBytes(out) };
  if (args.json) {
    printJson(io, result);
    return 0;
  }
  printTable(io, ['out', 'quantized tensors', 'safetensors in', 'safetensors out'], [[out, quantized.length, humanBytes(result.bytes_in), humanBytes(result.bytes_out)]]);
  return 0;
}
