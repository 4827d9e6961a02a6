// `--backend llamacpp` as the run engine will open it: a zoo id is exported to a cached GGUF and
// run with the checkpoint's tokenizer; the answers are the reference runner's. Plus what the runner
// reports (info, memory, throughput) and its errors for files that are not GGUF models.
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../results/errors.ts';
import { openLlamaCppRunner } from '../../runners/llamacpp/open.ts';
import { LlamaCppRunner } from '../../runners/llamacpp/runner.ts';
import { ReferenceRunner } from '../../runners/reference-runner.ts';

const root = mkdtempSync(join(tmpdir(), 'llama-eval-llamacpp-open-'));
const env = { ...process.env, LLAMA_EVAL_CACHE: join(root, 'cache') };
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

describe('openLlamaCppRunner', () => {
  it('exports tiny-llama-2 to a cached GGUF once and answers like the reference runner', async () => {
    const runner = await openLlamaCppRunner('tiny-llama-2', { env, offline: true, gpu: false, threads: 1, contextSize: 128 });
    const again = await openLlamaCppRunner('tiny-llama-2', { env, offline: true, gpu: false, threads: 1, contextSize: 128 });
    const reference = await ReferenceRunner.open('tiny-llama-2', { env, offline: true });
    try {
      expect(readdirSync(join(root, 'cache', 'gguf')).filter((f) => f.endsWith('.gguf'))).toHaveLength(1);
      expect(runner.info).toMatchObject({ backend: 'llamacpp', device: 'cpu', dtype: 'f32', model: 'tiny-llama-2', peft: null });
      expect(Object.keys(runner.info.versions)).toEqual(['node-llama-cpp', 'llama.cpp']);
      const reqs = [
        { context: 'The capital of France is', continuation: ' Paris' },
        { context: 'The capital of France is', continuation: ' London' },
        { context: '', continuation: 'Once upon a time' },
      ];
      const got = await collect(runner.loglikelihood(reqs));
      const want = await collect(reference.loglikelihood(reqs));
      got.forEach((g, i) => {
        expect(g.tokens).toBe(want[i]!.tokens);
        expect(g.isGreedy).toBe(want[i]!.isGreedy);
        expect(Math.abs(g.logprob - want[i]!.logprob)).toBeLessThanOrEqual(1e-3); // issue 9's bound
      });
      const gen = [{ context: 'Hello', until: ['\n'], maxTokens: 4 }];
      expect(await collect(runner.generate(gen))).toEqual(await collect(reference.generate(gen)));
      const t = runner.throughput();
      expect(t.prefillTokens).toBeGreaterThan(0);
      expect(t.decodeTokens).toBeGreaterThan(0);
      const m = runner.memory();
      expect(m.kvCacheBytes).toBeGreaterThan(0);
      expect(m.deviceBytes).toBeNull(); // CPU
    } finally {
      await runner.close();
      await again.close();
    }
  });

  it('refuses a missing file and a file that is not a GGUF model with InputErrors', async () => {
    await expect(LlamaCppRunner.open({ modelPath: join(root, 'none.gguf'), gpu: false })).rejects.toThrow(/no such GGUF file/);
    const junk = join(root, 'junk.gguf');
    writeFileSync(junk, 'not a gguf file at all');
    const error = await LlamaCppRunner.open({ modelPath: junk, gpu: false }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toMatch(/junk\.gguf: llama\.cpp cannot load it as a GGUF model/);
    expect(existsSync(junk)).toBe(true);
  });
});
