// Issue 9 acceptance: the backends — ORT graph, float64 reference, llama.cpp on an exported GGUF,
// and an OpenAI-compatible server (`llama-eval serve`'s server on loopback) — give the same answers
// on the same items of a suite run: the same chosen option per item, hence the same accuracy.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RUN_COMMAND } from '../../harness/cli/run-args.ts';
import { readRecords } from '../../results/store.ts';
import { servedReferenceModel } from '../../runners/remote/served-reference.ts';
import { CompletionsServer } from '../../runners/remote/server.ts';
import { runCli } from './reports-cli-harness.ts';

const root = mkdtempSync(join(tmpdir(), 'backends-agree-'));
let server: CompletionsServer;
let url = '';

beforeAll(async () => {
  server = new CompletionsServer(await servedReferenceModel('tiny-llama-2', { name: 'tiny-llama-2' }));
  url = `http://127.0.0.1:${await server.listen(0)}`;
});
afterAll(async () => {
  await server.close();
  rmSync(root, { recursive: true, force: true });
});

/** doc id -> index of the highest-scoring choice, per task, from a run's sample records. */
async function answers(backend: string, extra: string[] = []): Promise<Record<string, number>> {
  const out = join(root, backend);
  const r = await runCli(['run', '--task', 'piqa', 'medqa', '--limit', '2', '--model', 'tiny-llama-2', '--backend', backend, '--out', out, '--offline', '--no-cache', '--no-history', ...extra], [RUN_COMMAND]);
  expect(r.code, r.err).toBe(0);
  const chosen: Record<string, number> = {};
  for (const s of readRecords(join(out, 'records.jsonl')).records) {
    if (s.kind !== 'sample') continue;
    const ll = s.loglikelihoods ?? [];
    chosen[`${s.task}/${s.doc_id}`] = ll.indexOf(Math.max(...ll));
  }
  return chosen;
}

describe('backends agree on a tiny-model suite run', () => {
  let reference: Record<string, number> = {};
  beforeAll(async () => {
    reference = await answers('reference');
  }, 180_000);

  it('the reference run scored every item', () => {
    expect(Object.keys(reference)).toHaveLength(4);
  });

  it.each([
    ['ort', []],
    ['llamacpp', []],
    ['openai', ['--base-url']],
  ])('%s chooses the same option as the reference on every item', async (backend, extra) => {
    expect(await answers(backend, extra.length > 0 ? [...extra, url] : [])).toEqual(reference);
  }, 180_000);
});
