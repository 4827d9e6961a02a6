// Issue 9 acceptance, fault test: `llama-eval run --backend openai` against our completions server on
// loopback; the server goes down mid-run (closed from inside the served model on its Nth request, so
// the moment is exact, not timed). The cells it hits end as error records and the run exits 1; with
// the server back on the same port, `--resume` into the same --out finishes the run, and its
// results.json rows equal those of an uninterrupted run against the same server (the reference here).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RUN_COMMAND } from '../../harness/cli/run-args.ts';
import type { RunSummary } from '../../harness/run/summary.ts';
import { readRecords } from '../../results/store.ts';
import { servedReferenceModel } from '../../runners/remote/served-reference.ts';
import { CompletionsServer, type ServedModel } from '../../runners/remote/server.ts';
import { runCli } from './reports-cli-harness.ts';

const root = mkdtempSync(join(tmpdir(), 'run-fault-'));
let model: ServedModel;
let server: CompletionsServer;
let port = 0;
/** Scoring calls the server has answered; at `failAt` the server closes itself (0: never). */
const calls = { count: 0, failAt: 0 };

/** The served model, with a counter that takes the whole server down on the failAt-th scoring call. */
function failing(inner: ServedModel): ServedModel {
  return {
    ...inner,
    encode: (text) => inner.encode(text),
    decode: (ids) => inner.decode(ids),
    generate: (prompt, until, maxTokens) => inner.generate(prompt, until, maxTokens),
    async scorePositions(ids) {
      calls.count++;
      if (calls.failAt > 0 && calls.count === calls.failAt) {
        void server.close();
        throw new Error('server going down (fault test)');
      }
      return inner.scorePositions(ids);
    },
  };
}

beforeAll(async () => {
  model = failing(await servedReferenceModel('tiny-llama-2', { name: 'tiny-llama-2', offline: true }));
  server = new CompletionsServer(model);
  port = await server.listen(0);
}, 60_000);
afterAll(async () => {
  await server.close();
  rmSync(root, { recursive: true, force: true });
});

// --retries 0: a refused or reset connection fails its request at once (the default retries for ~15 s).
const argv = (out: string) => [
  'run', '--tasks', 'boolq,piqa', '--limit', '2', '--backend', 'openai', '--model', 'tiny-llama-2', '--base-url', `http://127.0.0.1:${port}`,
  '--retries', '0', '--request-timeout', '20', '--no-cache', '--no-history', '--offline', '--out', out, '--json',
];
const rows = (out: string) => (JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as RunSummary).rows;

describe('the server dies mid-run; --resume completes the run once it is back', () => {
  it('interrupted + resumed gives the rows of an uninterrupted run', async () => {
    const whole = join(root, 'whole');
    const clean = await runCli(argv(whole), [RUN_COMMAND]);
    expect(clean.code, clean.err).toBe(0);
    // boolq and piqa: 2 choices each, one echo/logprobs request per choice -> 2 tasks x 2 docs x 2 = 8 calls.
    expect(calls.count).toBe(8);

    // Down on call 7: boolq (calls 1-4) is finished, piqa has scored its first document and fails on its second.
    calls.count = 0;
    calls.failAt = 7;
    const out = join(root, 'faulted');
    const faulted = await runCli(argv(out), [RUN_COMMAND]);
    expect(faulted.code, faulted.err).toBe(1);
    const errors = readRecords(join(out, 'records.jsonl')).records.filter((r) => r.kind === 'error');
    expect(errors.map((e) => e.kind === 'error' && e.task)).toEqual(['piqa']);
    expect((JSON.parse(faulted.out) as RunSummary).errors.map((e) => e.task)).toEqual(['piqa']);

    calls.failAt = 0;
    server = new CompletionsServer(model);
    expect(await server.listen(port)).toBe(port);
    const resumed = await runCli([...argv(out), '--resume'], [RUN_COMMAND]);
    expect(resumed.code, resumed.err).toBe(0);
    expect(resumed.err).toContain('1 completed cell(s) were not run again');
    expect(rows(out)).toEqual(rows(whole));
    expect(rows(out).map((r) => [r.task, r.metric, r.n])).toEqual([['boolq', 'acc', 2], ['piqa', 'acc', 2], ['piqa', 'acc_norm', 2]]);
  }, 180_000);

  it('--retries and --request-timeout are refused off the openai backend and checked', async () => {
    const nullRun = await runCli(['run', '--task', 'boolq', '--backend', 'null', '--retries', '1', '--out', join(root, 'x')], [RUN_COMMAND]);
    expect(nullRun.code).toBe(2);
    expect(nullRun.err).toMatch(/--request-timeout\/--retries apply to --backend openai only/);
    const bad = await runCli(argv(join(root, 'y')).map((w) => (w === '20' ? '0' : w)), [RUN_COMMAND]);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--request-timeout: expected seconds above 0/);
  });
});
