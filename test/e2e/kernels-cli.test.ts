// `llama-eval bench kernels` through its CommandSpec, as main.ts registers it: argument
// validation and the CUDA-missing path (the timed grid itself runs in `npm run bench:kernels`).
import yargs from 'yargs';
import { describe, expect, it } from 'vitest';
import { BENCH_COMMAND } from '../../harness/cli/bench-args.ts';
import { cudaAvailable } from '../../runners/ort/session.ts';

async function bench(...args: string[]): Promise<{ code: number | null; error: Error | null; out: string }> {
  let out = '';
  let code: number | null = null;
  let error: Error | null = null;
  await yargs(args).command(BENCH_COMMAND.name, BENCH_COMMAND.describe, BENCH_COMMAND.builder, async (argv) => {
    const mod = await BENCH_COMMAND.load();
    try {
      code = await mod.run(argv as Record<string, unknown>, { out: (s) => (out += s), err: () => {} });
    } catch (e) {
      error = e as Error;
    }
  }).strict().exitProcess(false).fail((msg, e) => { error = e ?? new Error(msg); }).parseAsync();
  return { code, error, out };
}

describe('llama-eval bench kernels', () => {
  it.skipIf(cudaAvailable())('--device cuda without the CUDA provider is an input error naming the install command', async () => {
    const r = await bench('bench', 'kernels', '--device', 'cuda', '--quick');
    expect(r.error?.name).toBe('InputError');
    expect(r.error?.message).toContain('ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js');
  });

  it('rejects an unknown kernel and a malformed --max-memory', async () => {
    expect((await bench('bench', 'kernels', '--kernel', 'flash-attention')).error?.message).toMatch(/Invalid values|Choices|expected one of "nf4-matmul"/);
    const r = await bench('bench', 'kernels', '--max-memory', 'lots');
    expect(r.error?.message).toMatch(/--max-memory "lots": expected a size like 8GiB/);
  });
});
