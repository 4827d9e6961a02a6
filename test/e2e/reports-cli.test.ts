// report / compare / regress / leaderboard as a user runs them, on the fixture runs
// (test/fixtures/runs/generate.ts says what each holds).
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RunSummarySchema } from '../../reports/summary-types.ts';
import { FIXTURES_DIR } from '../fixtures/runs/generate.ts';
import { runCli } from './reports-cli-harness.ts';

const tmp = mkdtempSync(join(tmpdir(), 'reports-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const run = (name: string) => join(FIXTURES_DIR, name);

describe('llama-eval report', () => {
  it('writes specs, SVG, PNG, CSV, summary.md and results.json; failed cells read FAILED', async () => {
    const out = join(tmp, 'report');
    const r = await runCli(['report', run('sweep'), '--out', out]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain('sweep: 5 configs, 1 failed cells');
    for (const f of ['scores.vl.json', 'scores.svg', 'scores.png', 'roofline.svg', 'results.csv', 'samples.csv', 'summary.md', 'results.json']) {
      expect(existsSync(join(out, f)), f).toBe(true);
    }
    expect(readFileSync(join(out, 'summary.md'), 'utf8')).toMatch(/\| gsm8k \|.*\| FAILED \|/);
    expect(RunSummarySchema.parse(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'))).run_id).toBe('sweep');
    // generate.ts sweep: 5 configs x 3 tasks x 40 items, minus the failed cell's 40 = 560 samples + header.
    expect(readFileSync(join(out, 'samples.csv'), 'utf8').trim().split('\n')).toHaveLength(561);
  });

  it('exits 2 naming the missing records.jsonl', async () => {
    const r = await runCli(['report', tmp, '--out', join(tmp, 'x')]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`expected ${join(tmp, 'records.jsonl')}`);
  });
});

describe('llama-eval compare', () => {
  it('gives per-task differences, McNemar p and the flipped items', async () => {
    const r = await runCli(['compare', run('nightly-base'), run('nightly-drop'), '--json']);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.out);
    const medqa = result.configs[0].tasks.find((t: { task: string }) => t.task === 'medqa');
    // generate.ts: 12 right->wrong, 2 wrong->right of 200 -> -0.05; McNemar 2*P(X<=2|14) = 212/16384.
    expect(medqa.diff).toBeCloseTo(-0.05, 12);
    expect(medqa.test).toMatchObject({ test: 'mcnemar', n: 200, discordant: { b: 12, c: 2 } });
    expect(medqa.test.pValue).toBe(212 / 16384);
    expect(medqa.test.flipped).toHaveLength(14);
    expect(medqa.significant).toBe(true);
    const cuad = result.configs[0].tasks.find((t: { task: string }) => t.task === 'cuad');
    expect(cuad.test.test).toBe('bootstrap'); // F1 per item is not 0/1
  });

  it('refuses runs whose task data hashes differ, naming the file', async () => {
    const r = await runCli(['compare', run('nightly-base'), run('hash-mismatch')]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/different task data: medqa\/test\.jsonl \(sha256 [0-9a-f]{12}… in .*nightly-base/);
    expect(r.err).not.toContain('piqa');
  });
});

describe('llama-eval regress', () => {
  it('exits 1 on the injected 5-point drop and names the task in regress.md and JUnit', async () => {
    const out = join(tmp, 'regress-drop');
    const r = await runCli(['regress', '--baseline', run('nightly-base'), '--current', run('nightly-drop'), '--out', out]);
    expect(r.code).toBe(1);
    const md = readFileSync(join(out, 'regress.md'), 'utf8');
    expect(md).toContain('**1 of 4 tasks regressed or failed:** `medqa`');
    const junit = readFileSync(join(out, 'junit.xml'), 'utf8');
    expect(junit.match(/<testcase /g)).toHaveLength(4); // one per task
    expect(junit.match(/<failure /g)).toHaveLength(1);
    expect(junit).toMatch(/<testcase classname="llama-eval.tiny-llama-3.1\/lora" name="medqa" time="0">\s*<failure/);
  });

  it('exits 0 on identical runs', async () => {
    const r = await runCli(['regress', '--baseline', run('nightly-base'), '--current', run('nightly-base'), '--out', join(tmp, 'same')]);
    expect(r.code).toBe(0);
    expect(r.out).toContain('**No regression** across 4 tasks.');
  });

  it('a drop within --max-drop passes', async () => {
    const r = await runCli(['regress', '--baseline', run('nightly-base'), '--current', run('nightly-drop'), '--max-drop', '0.06', '--out', join(tmp, 'lenient')]);
    expect(r.code).toBe(0);
  });

  it('a results.json baseline has no items, so the same drop gets an unpaired z-test and is not significant', async () => {
    const report = join(tmp, 'base-report');
    expect((await runCli(['report', run('nightly-base'), '--out', report, '--no-png'])).code).toBe(0);
    const r = await runCli(['regress', '--baseline', join(report, 'results.json'), '--current', run('nightly-drop'), '--out', join(tmp, 'unpaired')]);
    // medqa 0.545±0.0353 vs 0.495±0.0354: z ≈ -1.0, p ≈ 0.32 (the paired test above: p = 0.0129).
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/medqa .*not significant: p=0\.3\d+ >= 0\.05 \(z\)/);
  });

  it('a task that failed in the current run fails the gate', async () => {
    const dir = join(tmp, 'failed-current');
    cpSync(run('nightly-base'), dir, { recursive: true });
    const lines = readFileSync(join(dir, 'records.jsonl'), 'utf8').trim().split('\n')
      .filter((l) => !(l.includes('"task":"gsm8k"') && l.includes('"kind":"metric"')));
    lines.push(JSON.stringify({ kind: 'error', run_id: 'nightly-base', cell_id: 'tiny-llama-3.1/lora/gsm8k', time: '2026-11-21T02:00:00.000Z', message: 'worker crashed' }));
    writeFileSync(join(dir, 'records.jsonl'), `${lines.join('\n')}\n`);
    const r = await runCli(['regress', '--baseline', run('nightly-base'), '--current', dir, '--out', join(tmp, 'failed-out')]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/❌ failed \| tiny-llama-3.1\/lora \| gsm8k .*failed in current run: worker crashed/);
  });

  it('exits 2 on a bad flag value or different data, naming it', async () => {
    const bad = await runCli(['regress', '--baseline', run('nightly-base'), '--current', run('nightly-drop'), '--alpha', '2']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--alpha must be a number in');
    const data = await runCli(['regress', '--baseline', run('hash-mismatch'), '--current', run('nightly-base'), '--out', join(tmp, 'd')]);
    expect(data.code).toBe(2);
    expect(data.err).toContain('medqa/test.jsonl');
  });
});

describe('llama-eval leaderboard', () => {
  it('writes index.html, per-run pages, results.json and the bundled scripts', async () => {
    const out = join(tmp, 'site');
    const r = await runCli(['leaderboard', run('sweep'), run('nightly-base'), '--out', out]);
    expect(r.code).toBe(0);
    for (const f of ['index.html', 'runs/sweep.html', 'runs/nightly-base.json', 'results.json', 'assets/vega.min.js', 'assets/vega-lite.min.js', 'assets/vega-embed.min.js', 'assets/leaderboard.js']) {
      expect(existsSync(join(out, f)), f).toBe(true);
    }
    const html = readFileSync(join(out, 'index.html'), 'utf8');
    expect(html).not.toMatch(/https?:\/\/(cdn|unpkg|fastly)/);
    // A per-run summary is a valid regress baseline.
    expect(RunSummarySchema.parse(JSON.parse(readFileSync(join(out, 'runs', 'sweep.json'), 'utf8'))).configs).toHaveLength(5);
  });
});
