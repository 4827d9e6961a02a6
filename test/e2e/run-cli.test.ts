// `llama-eval run` as a user runs it: flags through yargs (the same setup main.ts uses, via the
// reports harness), the real task registry and bundled data, the embedded default model on the
// float64 reference backend (kept to --limit 2: that forward is slow), and bad input -> exit 2.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yargs from 'yargs';
import { afterAll, describe, expect, it } from 'vitest';
import { RUN_COMMAND } from '../../harness/cli/run-args.ts';
import { readRecords } from '../../results/store.ts';
import { runCli } from './reports-cli-harness.ts';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
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
    expect(records.find((x) => x.kind === 'params')).toMatchObject({ model: 'tiny-llama-3', trainable_params: 0, peft: null });
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
    [['--backend', 'ort'], /--backend ort is not available yet/],
    [['--peft', 'lora'], /cannot apply adapters yet \(issue 5/],
    [['--task', 'boolqq', '--backend', 'null'], /unknown task.*boolq/],
    [['--suite', 'medicl', '--backend', 'null'], /did you mean "medical"/],
    [['--limit', '0', '--backend', 'null'], /--limit: expected a positive integer/],
    [['--model', 'tiny-llama-9', '--task', 'boolq'], /unknown model "tiny-llama-9"/],
    [['--protocol', 'chat'], /chat/],
    [['--peft', 'lora:r=x', '--backend', 'null'], /bad PEFT spec "lora:r=x"/],
  ])('rejects %j with exit code 2', async (argv, message) => {
    const r = await run([...argv, '--out', outDir()]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
  });

  it('--help shows examples', async () => {
    const help = await RUN_COMMAND.builder(yargs([]).scriptName('llama-eval').wrap(null)).getHelp();
    expect(help).toContain('--suite medical --limit 20');
    expect(help).toContain('Exit codes');
  });
});
