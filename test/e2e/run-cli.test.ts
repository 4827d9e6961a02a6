// `llama-eval run` as a user runs it: flags through yargs (the same setup main.ts uses, via the
// reports harness), the real task registry and bundled data, the embedded default model on the
// float64 reference backend (kept to --limit 2: that forward is slow), and bad input -> exit 2.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yargs from 'yargs';
import { afterAll, describe, expect, it } from 'vitest';
import { HISTORY_COMMAND } from '../../harness/cli/history-args.ts';
import { PARAMS_COMMAND } from '../../harness/cli/params-args.ts';
import { RUN_COMMAND } from '../../harness/cli/run-args.ts';
import { readRecords } from '../../results/store.ts';
import { runCli } from './reports-cli-harness.ts';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
// The default response cache lives under $XDG_CACHE_HOME: keep it in a temporary directory, so these runs
// neither read answers cached by earlier test runs nor leave files in the user's ~/.cache.
const xdg = mkdtempSync(join(tmpdir(), 'run-cli-xdg-'));
dirs.push(xdg);
process.env.XDG_CACHE_HOME = xdg;
const outDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'run-cli-'));
  dirs.push(d);
  return join(d, 'out');
};
const run = (argv: string[]) => runCli(['run', ...argv], [RUN_COMMAND]);

describe('llama-eval run', () => {
  it('runs the embedded default model offline, says so, prints acc with stderr and writes valid records', async () => {
    const out = outDir();
    const r = await run(['--task', 'boolq', '--limit', '2', '--out', out, '--offline']);
    expect(r.err).toContain('no --model given: evaluating the embedded default tiny-llama-3');
    expect(r.code).toBe(0);
    expect(r.out).toContain('tiny-llama-3 / base');
    expect(r.out).toMatch(/boolq\s*│\s*acc\s*│\s*\d\.\d{4} ± \d\.\d{4} \(n=2\)/);
    expect(r.out).toContain('embedded default tiny-llama-3');
    const { records, problems } = readRecords(join(out, 'records.jsonl'));
    expect(problems).toEqual([]);
    expect(records.filter((x) => x.kind === 'sample')).toHaveLength(2);
    const manifest = records.find((x) => x.kind === 'manifest');
    // The model files and the bundled data file are hashed into the manifest.
    expect(manifest?.kind === 'manifest' && manifest.files.map((f) => f.role)).toEqual(expect.arrayContaining(['model', 'data']));
    // Without an adapter every parameter is trainable, as `llama-eval params` reports a base model.
    const params = records.find((x) => x.kind === 'params');
    expect(params).toMatchObject({ model: 'tiny-llama-3', peft: null });
    expect(params?.kind === 'params' && params.trainable_params).toBe(params?.kind === 'params' && params.total_params);
    expect(records.filter((x) => x.kind === 'memory' || x.kind === 'throughput')).toHaveLength(2);
    expect(existsSync(join(out, 'results.json'))).toBe(true);
  });

  it('--json prints the summary, with the PEFT label on the null backend', async () => {
    const out = outDir();
    const r = await run(['--task', 'piqa', '--limit', '2', '--backend', 'null', '--model', 'tiny-llama-2', '--peft', 'lora:r=8', '--out', out, '--json']);
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.out) as { rows: { task: string; metric: string; peft: string | null; n: number }[] };
    expect(summary.rows.map((x) => [x.task, x.metric, x.n])).toEqual([['piqa', 'acc', 2], ['piqa', 'acc_norm', 2]]);
    expect(summary.rows[0]!.peft).toMatch(/^lora r=8 /);
    expect(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'))).toEqual(summary);
  });

  it.each([
    [['--backend', 'llamacpp', '--peft', 'lora:r=8'], /llamacpp backend runs the model as given and cannot apply adapters/],
    [['--backend', 'openai', '--model', 'm'], /--backend openai needs --base-url/],
    [['--backend', 'openai', '--base-url', 'http://127.0.0.1:9'], /--backend openai needs --model/],
    [['--task', 'boolqq', '--backend', 'null'], /unknown task.*boolq/],
    [['--suite', 'medicl', '--backend', 'null'], /did you mean "medical"/],
    [['--limit', '0', '--backend', 'null'], /--limit: expected a positive integer/],
    [['--model', 'tiny-llama-9', '--task', 'boolq'], /unknown model "tiny-llama-9"/],
    [['--protocol', 'chat'], /chat/],
    [['--peft', 'lora:r=x', '--backend', 'null'], /bad PEFT spec "lora:r=x"/],
    [['--num-fewshot', '-1', '--backend', 'null'], /--num-fewshot: expected a whole number 0 or more, got -1/],
    [['--num-fewshot', '1.5', '--backend', 'null'], /--num-fewshot: expected a whole number/],
    [['--batch-size', '0', '--backend', 'null'], /--batch-size: expected a positive integer, got 0/],
    [['--tasks', 'boolq,pica', '--backend', 'null'], /unknown task.*piqa/],
    [['--resume', '--backend', 'null'], /records\.jsonl does not exist; give the --out of an earlier run/],
  ])('rejects %j with exit code 2', async (argv, message) => {
    const r = await run([...argv, '--out', outDir()]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
  });

  it('a PEFT spec runs as PEFT initialises it: LoRA (B = 0) scores exactly as the base, with its trainable count recorded', async () => {
    const out = outDir();
    const r = await run(['--task', 'piqa', '--limit', '3', '--model', 'tiny-llama-2', '--peft', 'lora:r=8', '--out', out, '--offline', '--json']);
    expect(r.code).toBe(0);
    const base = await run(['--task', 'piqa', '--limit', '3', '--model', 'tiny-llama-2', '--out', outDir(), '--offline', '--json']);
    const rows = (x: string) => (JSON.parse(x) as { rows: { metric: string; value: number }[] }).rows.map((row) => [row.metric, row.value]);
    expect(rows(r.out)).toEqual(rows(base.out));
    const { records } = readRecords(join(out, 'records.jsonl'));
    const samples = records.filter((x) => x.kind === 'sample');
    expect(samples.every((x) => x.kind === 'sample' && x.loglikelihoods !== undefined)).toBe(true);
    const params = records.find((x) => x.kind === 'params');
    const cli = await runCli(['params', '--model', 'tiny-llama-2', '--peft', 'lora:r=8', '--json'], [PARAMS_COMMAND]);
    const expected = JSON.parse(cli.out) as { trainable_params: number; total_params: number };
    expect(params).toMatchObject({ trainable_params: expected.trainable_params, total_params: expected.total_params });
    expect(expected.trainable_params).toBeGreaterThan(0);
  });

  it('--tasks a,b and --output, --resume of that run, --batch-size: the same rows however requests are grouped', async () => {
    const out = outDir();
    const cache = ['--cache-dir', join(outDir(), 'cache')];
    const first = await run(['--tasks', 'boolq,piqa', '--limit', '3', '--backend', 'null', '--output', out, '--json', '--no-cache']);
    expect(first.code).toBe(0);
    const rows = (x: string) => (JSON.parse(x) as { rows: { task: string; metric: string; value: number; n: number }[] }).rows.map((row) => [row.task, row.metric, row.value, row.n]);
    expect(rows(first.out).map((r) => `${r[0]}:${r[1]}`)).toEqual(['boolq:acc', 'piqa:acc', 'piqa:acc_norm']);
    const resumed = await run(['--tasks', 'boolq,piqa', '--limit', '3', '--backend', 'null', '--output', out, '--json', '--resume', ...cache]);
    expect(resumed.code).toBe(0);
    expect(resumed.err).toContain('2 completed cell(s) were not run again');
    expect(rows(resumed.out)).toEqual(rows(first.out));
    const batched = await run(['--task', 'boolq', '--task', 'piqa', '--limit', '3', '--backend', 'null', '--out', outDir(), '--json', '--batch-size', '2', '--no-cache']);
    expect(rows(batched.out)).toEqual(rows(first.out));
  });

  it('--dtype fp16 runs the ORT fp16 graph (recorded in the manifest); other backends and --peft refuse it', async () => {
    const out = outDir();
    const r = await run(['--task', 'boolq', '--limit', '2', '--model', 'tiny-llama-2', '--dtype', 'fp16', '--out', out, '--offline', '--no-history', '--no-cache']);
    expect(r.code).toBe(0);
    const { records } = readRecords(join(out, 'records.jsonl'));
    const manifest = records.find((x) => x.kind === 'manifest');
    expect(manifest?.kind === 'manifest' && (manifest.config as Record<string, unknown>).dtype).toBe('fp16');
    expect(records.filter((x) => x.kind === 'sample')).toHaveLength(2);
    const ref = await run(['--task', 'boolq', '--backend', 'reference', '--dtype', 'fp16', '--out', outDir()]);
    expect(ref.code).toBe(2);
    expect(ref.err).toMatch(/--dtype fp16: only the ort backend/);
    const peft = await run(['--task', 'boolq', '--dtype', 'fp16', '--peft', 'lora:r=8', '--out', outDir()]);
    expect(peft.code).toBe(2);
  });

  it('--resume refuses a directory that holds no run', async () => {
    const out = outDir();
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'records.jsonl'), '');
    const r = await run(['--task', 'boolq', '--backend', 'null', '--out', out, '--resume']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--resume: .*records\.jsonl holds no manifest record/);
  });

  it('ingests the finished run into the history store; a broken store only warns', async () => {
    const out = outDir();
    const db = join(outDir(), 'history.duckdb');
    const r = await run(['--task', 'piqa', '--limit', '2', '--backend', 'null', '--out', out, '--db', db, '--no-cache']);
    expect(r.code).toBe(0);
    expect(r.err).toContain(`added to the run history ${db}`);
    const manifest = readRecords(join(out, 'records.jsonl')).records.find((x) => x.kind === 'manifest');
    const q = await runCli(['history', 'query', 'SELECT run_id FROM runs', '--db', db, '--json'], [HISTORY_COMMAND]);
    expect(q.out).toContain(manifest!.run_id);
    // A file that is not a DuckDB store: the run still succeeds and its records are complete.
    const bad = join(out, 'not-a-store.duckdb');
    writeFileSync(bad, 'garbage');
    const r2 = await run(['--task', 'piqa', '--limit', '2', '--backend', 'null', '--out', outDir(), '--db', bad, '--no-cache']);
    expect(r2.code).toBe(0);
    expect(r2.err).toMatch(/warning: the run history was not updated .*not-a-store\.duckdb/);
  });

  it('--help shows examples', async () => {
    const help = await RUN_COMMAND.builder(yargs([]).scriptName('llama-eval').wrap(null)).getHelp();
    expect(help).toContain('--suite medical --limit 20');
    expect(help).toContain('Exit codes');
  });
});
