// `llama-eval history` as a user runs it, on the fixture runs (test/fixtures/runs/generate.ts).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HISTORY_COMMAND } from '../../harness/cli/history-args.ts';
import { LEADERBOARD_COMMAND } from '../../harness/cli/leaderboard-args.ts';
import { REGRESS_COMMAND } from '../../harness/cli/regress-args.ts';
import { FIXTURES_DIR } from '../fixtures/runs/generate.ts';
import { runCli } from './reports-cli-harness.ts';

const tmp = mkdtempSync(join(tmpdir(), 'history-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const db = join(tmp, 'store', 'history.duckdb');
const cli = (...argv: string[]) => runCli(['history', ...argv, '--db', db], [HISTORY_COMMAND]);
const run = (name: string) => join(FIXTURES_DIR, name);

describe('llama-eval history', () => {
  beforeAll(async () => {
    const r = await cli('ingest', run('nightly-base'), run('nightly-drop'), run('sweep'));
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain(`3 new of 3 runs in ${db}`);
  }, 30_000);

  it('ingest of the same runs again reports nothing new', async () => {
    const r = await cli('ingest', run('sweep'), '--json');
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.out) as { runs: { run_id: string; added: Record<string, number> }[] };
    expect(summary.runs[0]?.run_id).toBe('sweep');
    expect(Object.values(summary.runs[0]!.added).every((n) => n === 0)).toBe(true);
  });

  it('trend --json gives three points in time order and --chart writes a Vega-Lite spec', async () => {
    const chart = join(tmp, 'charts', 'trend.vl.json');
    const r = await cli('trend', '--task', 'medqa', '--model', 'tiny-llama-3.1', '--peft', 'lora', '--json', '--chart', chart);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const t = JSON.parse(r.out) as { metric: string; points: { run_id: string; n: number }[] };
    expect(t.metric).toBe('acc');
    // manifest times: nightly-base 2026-11-20T02:00, sweep 2026-11-20T03:00, nightly-drop 2026-11-21T02:00
    expect(t.points.map((p) => p.run_id)).toEqual(['nightly-base', 'sweep', 'nightly-drop']);
    // generate.ts: 200 medqa items in the nightlies, 40 per config in the sweep.
    expect(t.points.map((p) => p.n)).toEqual([200, 40, 200]);
    expect(existsSync(chart)).toBe(true);
    expect((JSON.parse(readFileSync(chart, 'utf8')) as { $schema: string }).$schema).toContain('vega-lite');
  });

  it('trend prints a table, one row per run', async () => {
    const r = await cli('trend', '--task', 'medqa', '--model', 'tiny-llama-3.1', '--peft', 'lora', '--last', '2');
    expect(r.code).toBe(0);
    // The accuracy recomputed from nightly-drop's medqa samples, as the table prints it (4 decimals).
    const medqa = readFileSync(join(run('nightly-drop'), 'records.jsonl'), 'utf8').split('\n')
      .filter((l) => l.includes('"kind":"sample"') && l.includes('"task":"medqa"'))
      .map((l) => (JSON.parse(l) as { metrics: { acc: number } }).metrics.acc);
    const acc = medqa.reduce((s, x) => s + x, 0) / medqa.length;
    expect(r.out).toMatch(new RegExp(`nightly-drop .*${acc.toFixed(4).replace('.', '\\.')}`));
    expect(r.out).not.toContain('nightly-base');
    expect(r.out).toContain('medqa acc for tiny-llama-3.1/lora: 2 runs');
  });

  it('flips lists the changed items', async () => {
    const r = await cli('flips', 'nightly-base', 'nightly-drop', '--task', 'medqa', '--json');
    expect(r.code).toBe(0);
    const f = JSON.parse(r.out) as { compared: number; flips: { a: number; b: number }[] };
    // generate.ts: medqa 12 right->wrong, 2 wrong->right, out of 200.
    expect(f.compared).toBe(200);
    expect(f.flips.filter((x) => x.a === 1 && x.b === 0)).toHaveLength(12);
    expect(f.flips.filter((x) => x.a === 0 && x.b === 1)).toHaveLength(2);
  });

  it('query answers SQL and refuses a write with exit 2', async () => {
    const ok = await cli('query', 'SELECT run_id FROM runs ORDER BY time', '--json');
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out)).toEqual([{ run_id: 'nightly-base' }, { run_id: 'sweep' }, { run_id: 'nightly-drop' }]);
    const write = await cli('query', 'DELETE FROM runs');
    expect(write.code).toBe(2);
    expect(write.err).toContain('history query runs on a read-only connection, so this statement is refused');
  });

  it('usage errors exit 2 with one line', async () => {
    expect((await cli('trend', '--task', 'medqa')).err).toContain('history trend needs --task and --model');
    expect((await cli('flips', 'nightly-base')).code).toBe(2);
    expect((await cli('bogus')).code).toBe(2);
    const missing = await runCli(['history', 'query', 'SELECT 1', '--db', join(tmp, 'none.duckdb')], [HISTORY_COMMAND]);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain(`no history store at ${join(tmp, 'none.duckdb')}`);
  });
});

describe('llama-eval regress --baseline last-green', () => {
  const regressCli = (argv: string[]) => runCli(['regress', ...argv], [REGRESS_COMMAND]);

  it('takes the newest earlier run with no failed cell on the same data from the store', async () => {
    const store = join(tmp, 'green.duckdb');
    // base-v2: nightly-base re-run later (11-20 12:00) on a changed medqa file; must be passed over.
    const v2 = join(tmp, 'base-v2');
    mkdirSync(v2);
    const medqaV2 = 'e'.repeat(64);
    const lines = readFileSync(join(run('nightly-base'), 'records.jsonl'), 'utf8').split('\n').filter((l) => l !== '').map((l) => {
      const r: Record<string, unknown> = { ...(JSON.parse(l) as Record<string, unknown>), run_id: 'base-v2', time: '2026-11-20T12:00:00.000Z' };
      if (r.kind === 'manifest') r.files = (r.files as { path: string }[]).map((f) => (f.path === 'medqa/test.jsonl' ? { ...f, sha256: medqaV2 } : f));
      return JSON.stringify(r);
    });
    writeFileSync(join(v2, 'records.jsonl'), `${lines.join('\n')}\n`);
    const ingest = await runCli(['history', 'ingest', run('nightly-base'), run('sweep'), v2, '--db', store], [HISTORY_COMMAND]);
    expect(ingest.code).toBe(0);
    const r = await regressCli(['--baseline', 'last-green', '--db', store, '--current', run('nightly-drop'), '--out', join(tmp, 'regress-green')]);
    // sweep (11-20 03:00) has a failed cell, base-v2 a different medqa hash: nightly-base is the baseline,
    // and nightly-drop's 5-point medqa drop (generate.ts) fails the gate as with an explicit baseline.
    expect(r.out).toContain(`baseline last-green: run nightly-base (${join(run('nightly-base'), 'records.jsonl')})`);
    expect(r.code).toBe(1);
    expect(r.out).toContain('`medqa`');
  });

  it('exit 2 when the store holds no usable baseline', async () => {
    const store = join(tmp, 'only-sweep.duckdb');
    await runCli(['history', 'ingest', run('sweep'), '--db', store], [HISTORY_COMMAND]);
    const r = await regressCli(['--baseline', 'last-green', '--db', store, '--current', run('nightly-drop'), '--out', join(tmp, 'regress-none')]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('--baseline last-green: history store');
    expect(r.err).toContain('passed over: sweep (a failed cell)');
  });
});

describe('llama-eval leaderboard --from-history', () => {
  const lbCli = (argv: string[]) => runCli(['leaderboard', ...argv], [LEADERBOARD_COMMAND]);

  it('builds the site from the newest runs in the store, once each', async () => {
    const store = join(tmp, 'lb.duckdb');
    await runCli(['history', 'ingest', run('nightly-base'), run('sweep'), run('nightly-drop'), '--db', store], [HISTORY_COMMAND]);
    const out = join(tmp, 'site');
    // The two newest by manifest time are nightly-drop (11-21) and sweep (11-20 03:00); sweep is
    // also named on the command line and must not appear twice.
    const r = await lbCli([run('sweep'), '--from-history', '2', '--db', store, '--out', out]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain('2 runs');
    expect(existsSync(join(out, 'runs', 'nightly-drop.html'))).toBe(true);
    expect(existsSync(join(out, 'runs', 'nightly-base.html'))).toBe(false);
  });

  it('exit 2 with neither run directories nor --from-history', async () => {
    const r = await lbCli(['--out', join(tmp, 'site-none')]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('leaderboard: name run directories, or --from-history N');
  });
});
