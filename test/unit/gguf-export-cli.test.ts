// `llama-eval export --format gguf`: writes one GGUF file llama.cpp's reader accepts, and refuses
// bad input with an InputError (exit code 2) naming the flag and the fix.
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGgufFileInfo } from 'node-llama-cpp';
import { afterAll, describe, expect, it } from 'vitest';
import * as exportCommand from '../../harness/cli/export.ts';
import { InputError } from '../../results/errors.ts';

const root = mkdtempSync(join(tmpdir(), 'gguf-export-'));
process.env.LLAMA_EVAL_CACHE = join(root, 'cache'); // the command reads the cache location from the environment
afterAll(() => rmSync(root, { recursive: true, force: true }));

const quiet = { out: () => {}, err: () => {} };

describe('llama-eval export --format gguf', () => {
  it('writes an F16 GGUF file (and nothing else) that node-llama-cpp reads', async () => {
    const outDir = join(root, 'out');
    const out = join(outDir, 'tiny-llama-2-f16.gguf');
    let printed = '';
    expect(await exportCommand.run({ model: 'tiny-llama-2', format: 'gguf', out, dtype: 'f16', json: true }, { out: (s) => (printed += s), err: () => {} })).toBe(0);
    const report = JSON.parse(printed) as { out: string; dtype: string; tensors: number; bytes: number };
    // tiny-llama-2: token_embd + output_norm + output + 2 layers x 9 tensors (harness/zoo/tiny.ts).
    expect(report).toMatchObject({ out, format: 'gguf', dtype: 'f16', tensors: 21 });
    expect(readdirSync(outDir)).toEqual(['tiny-llama-2-f16.gguf']); // no temporary file left behind
    const info = await readGgufFileInfo(out);
    expect((info.metadata.general as { file_type?: number }).file_type).toBe(1); // gguf-py LlamaFileType.MOSTLY_F16
    expect(info.tensorCount).toBe(21);
  });

  it('refuses an unknown dtype, a directory as --out, and a model type it cannot export', async () => {
    await expect(exportCommand.run({ model: 'tiny-llama-2', format: 'gguf', out: join(root, 'x.gguf'), dtype: 'q4_k' }, quiet)).rejects.toThrow(/--dtype q4_k: GGUF export writes f32 or f16/);
    const dir = join(root, 'a-dir');
    mkdirSync(dir);
    await expect(exportCommand.run({ model: 'tiny-llama-2', format: 'gguf', out: dir }, quiet)).rejects.toThrow(InputError);
    await expect(exportCommand.run({ model: 'tiny-llama-4', format: 'gguf', out: join(root, 'l4.gguf') }, quiet)).rejects.toThrow(/model_type "llama"/);
    await expect(exportCommand.run({ model: 'tiny-llama-2', format: 'tflite', out: join(root, 'x') }, quiet)).rejects.toThrow(/--format tflite: expected onnx or gguf/);
  });
});
