// `llama-eval drift` as a user runs it on a tiny model: the figures, the records it appends, and
// that `history ingest` and `report` pick them up; bad input exits 2 with one line.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DRIFT_COMMAND } from '../../harness/cli/drift-args.ts';
import { HISTORY_COMMAND } from '../../harness/cli/history-args.ts';
import { REPORT_COMMAND } from '../../harness/cli/report-args.ts';
import { runCli } from './reports-cli-harness.ts';

const tmp = mkdtempSync(join(tmpdir(), 'drift-cli-'));
process.env.LLAMA_EVAL_CACHE = join(tmp, 'cache'); // tiny checkpoints are generated here
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const text = join(tmp, 'notes.txt');
writeFileSync(text, 'The quick brown fox jumps over the lazy dog. A language model predicts the next token of a text, one token at a time.\n');
const out = join(tmp, 'run');
const cli = (...argv: string[]) => runCli(argv, [DRIFT_COMMAND, HISTORY_COMMAND, REPORT_COMMAND]);

interface Drift { run_id: string; kind: string; kl_mean: number; kl_max: number; top1_agreement: number; ppl_ratio: number; n_tokens: number; against: string; peft: string | null }

describe('llama-eval drift', () => {
  it('a zero-initialized LoRA: KL exactly 0, agreement 1, PPL ratio 1; writes manifest + drift record', async () => {
    const r = await cli('drift', '--model', 'tiny-llama-2', '--peft', 'lora:r=4', '--init', 'zero', '--data', text, '--max-tokens', '24', '--json', '--out', out);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const d = JSON.parse(r.out) as Drift;
    expect([d.kl_mean, d.kl_max, d.top1_agreement, d.ppl_ratio]).toEqual([0, 0, 1, 1]);
    expect(d.n_tokens).toBe(24);
    expect(d.peft).toBe('lora r=4 alpha=8 targets=q_proj+v_proj');
    const lines = readFileSync(join(out, 'records.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Drift);
    expect(lines.map((l) => l.kind)).toEqual(['manifest', 'drift']);
  }, 60_000);

  it('fp32 vs NF4 joins the run already in --out, prints the llama-perplexity table', async () => {
    const r = await cli('drift', '--model', 'tiny-llama-2', '--against', 'nf4', '--data', text, '--max-tokens', '24', '--out', out);
    expect(r.code).toBe(0);
    expect(r.out).toContain('Mean KL(base||adapted)');
    expect(r.out).toContain('Same top p');
    const lines = readFileSync(join(out, 'records.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Drift);
    expect(lines.map((l) => l.kind)).toEqual(['manifest', 'drift', 'drift']);
    expect(new Set(lines.map((l) => l.run_id)).size).toBe(1);
    const nf4 = lines[2]!;
    expect(nf4.against).toBe('nf4');
    expect(nf4.kl_mean).toBeGreaterThan(0);
    expect(nf4.kl_mean).toBeLessThan(1e-2);
  }, 60_000);

  it('history ingest and report read the drift records', async () => {
    const db = join(tmp, 'history.duckdb');
    const ingest = await cli('history', 'ingest', out, '--db', db, '--json');
    expect(ingest.code).toBe(0);
    expect((JSON.parse(ingest.out) as { runs: { added: { drift: number } }[] }).runs[0]!.added.drift).toBe(2);
    const q = await cli('history', 'query', 'SELECT against, top1_agreement FROM drift ORDER BY against', '--db', db, '--json');
    expect(q.code).toBe(0);
    expect(q.out).toContain('"against": "base"');
    const report = join(tmp, 'report');
    const rep = await cli('report', out, '--out', report);
    expect(rep.code).toBe(0);
    const md = readFileSync(join(report, 'summary.md'), 'utf8');
    expect(md).toContain('### Drift');
    expect(md).toContain('| tiny-llama-2 (base) | nf4 | reference |');
    expect(existsSync(join(report, 'drift.vl.json'))).toBe(true);
  }, 60_000);

  it('bad input exits 2 with one line naming the problem', async () => {
    const missing = await cli('drift', '--model', 'tiny-llama-2', '--data', join(tmp, 'nope.txt'));
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('no such file, and unknown task or suite');
    const unmerged = await cli('drift', '--model', 'tiny-llama-2', '--against', 'unmerged', '--data', text);
    expect(unmerged.code).toBe(2);
    expect(unmerged.err).toContain('give --peft <adapter>');
    const zero = await cli('drift', '--model', 'tiny-llama-2', '--data', text, '--max-tokens', '0');
    expect(zero.code).toBe(2);
    expect(zero.err).toContain('--max-tokens 0: expected a positive integer');
    const spec = await cli('drift', '--model', 'tiny-llama-2', '--peft', 'lora:r=x', '--data', text);
    expect(spec.code).toBe(2);
    expect(spec.err).toContain('lora:r=x');
  }, 60_000);
});
