// `llama-eval export --format gguf`: one GGUF file for llama.cpp from an HF LLaMA checkpoint
// (runners/gguf/llama.ts), F32 or F16, written to a temporary name and renamed into place so an
// interrupted export never leaves a truncated .gguf that llama.cpp would try to load.
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { InputError } from '../../results/errors.ts';
import { GGUF_EXPORT_DTYPES, exportCheckpointToGguf, type GgufExportDtype } from '../../runners/gguf/llama.ts';
import { openCheckpoint } from '../../runners/hf/checkpoint.ts';
import type { CliIO } from './command.ts';
import { humanBytes, printJson } from './output.ts';

function isDtype(value: string): value is GgufExportDtype {
  return (GGUF_EXPORT_DTYPES as readonly string[]).includes(value);
}

export async function exportGguf(args: Record<string, unknown>, io: CliIO): Promise<number> {
  const dtype = String(args.dtype ?? 'f32');
  if (!isDtype(dtype)) throw new InputError(`--dtype ${dtype}: GGUF export writes ${GGUF_EXPORT_DTYPES.join(' or ')} (quantize the F16 file with llama.cpp's llama-quantize for Q8_0/Q4_K)`);
  const out = resolve(String(args.out));
  if (existsSync(out) && statSync(out).isDirectory()) throw new InputError(`--out ${out}: is a directory; --format gguf writes one file (e.g. --out ${out}/model-${dtype}.gguf)`);
  const checkpoint = await openCheckpoint(String(args.model), { offline: args.offline === true });
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  let tensors: number;
  try {
    tensors = exportCheckpointToGguf(checkpoint, tmp, dtype).tensors.length;
    renameSync(tmp, out);
  } finally {
    rmSync(tmp, { force: true });
  }
  const bytes = statSync(out).size;
  if (args.json) {
    printJson(io, { out, format: 'gguf', dtype, tensors, bytes });
  } else {
    io.out(`wrote ${out} (GGUF v3, ${dtype.toUpperCase()}, ${tensors} tensors, ${humanBytes(bytes)})\n`);
  }
  return 0;
}
