// The run engine end to end on the null backend and the fixture tasks (test/fixtures/run/tasks.ts):
// every cell in its own child process, error isolation, records, summary, resume.
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { evaluate, type EvaluateOptions } from '../../harness/run/evaluate.ts';
import { nullLogprob } from '../../runners/null.ts';
import { InputError } from '../../results/errors.ts';
import { readRecords } from '../../results/store.ts';
import { RecordSchema, type RunRecord, type SampleRecord } from '../../results/schema.ts';
import { MC_DOCS } from '../fixtures/run/tasks.ts';

const TASK_MODULE = new URL('../fixtures/run/tasks.ts', import.meta.url).href;
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function options(tasks: string[], extra: Partial<EvaluateOptions> = {}): EvaluateOptions {
  const outDir = mkdtempSync(join(tmpdir(), 'run-exec-'));
  dirs.push(outDir);
  return {
    suites: [], tasks, models: ['fixture-model'], pefts: [], backend: 'null', protocol: null, limit: null, seed: 7,
    dataPath: null, offline: true, outDir, taskModule: TASK_MODULE, ...extra,
  };
}

const records = (outDir: string): RunRecord[] => readRecords(join(outDir, 'records.jsonl')).records;
const samplesOf = (rs: RunRecord[], task: string): SampleRecord[] => rs.filter((r): r is SampleRecord => r.kind === 'sample' && r.task === task);

// Independent of the engine: acc from the null runner's documented formula and an argmax written here,
// and the binary-metric standard error in closed form, sqrt(p(1-p)/(n-1)) (= sample std / sqrt(n), ddof 1).
function expectedAcc(): { acc: number; accNorm: number } {
  let acc = 0;
  let accNorm = 0;
  for (const d of MC_DOCS) {
    const lls = d.choices.map((c) => nullLogprob(d.context, c));
    const best = lls.indexOf(Math.max(...lls));
    const norm = lls.map((ll, i) => ll / d.choices[i]!.length);
    const bestNorm = norm.indexOf(Math.max(...norm));
    acc += best === d.gold ? 1 : 0;
    accNorm += bestNorm === d.gold ? 1 : 0;
  }
  return { acc: acc / MC_DOCS.length, accNorm: accNorm / MC_DOCS.length };
}
const binaryStderr = (p: number, n: number): number => Math.sqrt((p * (1 - p)) / (n - 1));

describe('executeRun', () => {
  it('isolates failing cells: a throwing task, a crashing process and malformed data become error records; the rest finish', async () => {
    const o = options(['mc-ok', 'mc-throws', 'mc-crashes', 'mc-malformed', 'mc-skipped', 'gen-only']);
    const { summary } = await evaluate(o);
    expect(summary.rows.map((r) => `${r.task}:${r.metric}`)).toEqual(['mc-ok:acc', 'mc-ok:acc_norm', 'gen-only:exact_match']);
    const errors = Object.fromEntries(summary.errors.map((e) => [e.task, e.message]));
    expect(errors['mc-throws']).toBe('fixture task refuses to build a prompt');
    expect(errors['mc-crashes']).toMatch(/died \(exit code 7\)/);
    expect(errors['mc-malformed']).toBe('fixture.jsonl:3: not valid JSON');
    expect(summary.skipped).toEqual([{ model: 'fixture-model', peft: null, task: 'mc-skipped', reason: 'offline and not in the HF cache' }]);
    const rs = records(o.outDir);
    expect(rs.filter((r) => r.kind === 'error').map((r) => (r.kind === 'error' ? r.stage : ''))).toEqual(['execute', 'process', 'load']);
    // A skipped task is listed, never scored as zero.
    expect(rs.some((r) => r.kind === 'metric' && r.task === 'mc-skipped')).toBe(false);
  });

  it('a run refused on bad input (an unknown task) leaves no cell process behind', async () => {
    // evaluate() starts the first cell's process before it checks the task names (to overlap its start-up).
    // The finished run above leaves none either: evaluate() waits for its cells' processes to exit (a
    // process's handle is released a tick after its exit event, hence the short wait).
    const processes = (): number => process.getActiveResourcesInfo().filter((r) => r === 'ProcessWrap').length;
    await vi.waitFor(() => expect(processes()).toBe(0), { timeout: 500, interval: 10 });
    await expect(evaluate(options(['no-such-task']))).rejects.toThrow(InputError);
    await vi.waitFor(() => expect(processes()).toBe(0), { timeout: 500, interval: 10 });
  });

  it('writes records that all validate, and metrics equal to the mean of the sample metrics', async () => {
    const o = options(['mc-ok', 'gen-only']);
    const { summary } = await evaluate(o);
    const lines = readFileSync(join(o.outDir, 'records.jsonl'), 'utf8').trim().split('\n');
    for (const line of lines) expect(RecordSchema.safeParse(JSON.parse(line)).success).toBe(true);
    const rs = records(o.outDir);
    expect(rs.map((r) => r.kind).filter((k, i, a) => a.indexOf(k) === i)).toEqual(['manifest', 'sample', 'memory', 'throughput', 'metric']);
    const manifest = rs.find((r) => r.kind === 'manifest');
    expect(manifest).toMatchObject({ seed: 7, cell_id: 'run', node_version: process.version });

    const { acc, accNorm } = expectedAcc();
    const n = MC_DOCS.length;
    const row = (task: string, metric: string) => summary.rows.find((r) => r.task === task && r.metric === metric)!;
    expect(row('mc-ok', 'acc').value).toBeCloseTo(acc, 12);
    expect(row('mc-ok', 'acc_norm').value).toBeCloseTo(accNorm, 12);
    expect(row('mc-ok', 'acc').stderr).toBeCloseTo(binaryStderr(acc, n), 12);
    expect(row('mc-ok', 'acc').n).toBe(n);
    const samples = samplesOf(rs, 'mc-ok');
    expect(samples.map((s) => s.doc_id)).toEqual(MC_DOCS.map((d) => d.id));
    expect(samples.reduce((s, x) => s + x.metrics.acc!, 0) / n).toBeCloseTo(acc, 12);
    // The null runner answers "The answer is 0." and no fixture answer is in it.
    expect(row('gen-only', 'exact_match')).toMatchObject({ value: 0, stderr: 0, n });
    expect(JSON.parse(readFileSync(join(o.outDir, 'results.json'), 'utf8'))).toEqual(summary);
  });

  it('resumes: completed cells are not run again, a torn last line is tolerated, the summary is the same', async () => {
    const o = options(['mc-ok', 'mc-twin'], { limit: 3 });
    const first = await evaluate(o);
    const file = join(o.outDir, 'records.jsonl');
    // A run killed mid-write leaves half a line.
    appendFileSync(file, '{"kind":"sample","run_id":"x","cel');
    const second = await evaluate(o);
    expect(second.resumedCells).toBe(2);
    expect(second.summary).toEqual(first.summary);
    expect(samplesOf(records(o.outDir), 'mc-ok')).toHaveLength(3);

    // Killed after mc-ok finished and mid-way through mc-twin: its samples are there, its metrics not.
    const twinId = first.summary.rows.find((r) => r.task === 'mc-twin')!.cell_id;
    const kept = readFileSync(file, 'utf8').split('\n').filter((l) => !(l.includes('"kind":"metric"') && l.includes(twinId)));
    writeFileSync(file, kept.join('\n'));
    const third = await evaluate(o);
    expect(third.resumedCells).toBe(1);
    expect(third.summary).toEqual(first.summary);
    const rs = records(o.outDir);
    expect(samplesOf(rs, 'mc-ok')).toHaveLength(3);
    expect(samplesOf(rs, 'mc-twin')).toHaveLength(6); // the interrupted attempt's and the rerun's
    expect(rs.filter((r) => r.kind === 'manifest')).toHaveLength(1);
    expect(new Set(rs.map((r) => r.run_id)).size).toBe(1);
  });

  it('a run SIGKILLed mid-way resumes to the same summary as an uninterrupted run', async () => {
    const fixture = new URL('../fixtures/run/evaluate-fixture.ts', import.meta.url).pathname;
    const killed = options([]).outDir;
    const file = join(killed, 'records.jsonl');
    // detached: its own process group, so the kill takes the running cell's child with it.
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, killed], { detached: true, stdio: 'ignore' });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    const deadline = Date.now() + 30_000;
    while (!(existsSync(file) && readFileSync(file, 'utf8').includes('"kind":"metric"')) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    process.kill(-child.pid!, 'SIGKILL');
    await exited;
    const before = records(killed);
    const finished = new Set(before.filter((r) => r.kind === 'metric').map((r) => r.cell_id));
    expect(finished.size).toBeGreaterThanOrEqual(1);
    expect(finished.size).toBeLessThan(3); // killed mid-way, not after the end

    const resumeOptions = { ...options(['mc-ok', 'mc-twin', 'gen-only']), outDir: killed };
    const resumed = await evaluate(resumeOptions);
    expect(resumed.resumedCells).toBe(finished.size);
    const uninterrupted = await evaluate(options(['mc-ok', 'mc-twin', 'gen-only']));
    const strip = (s: typeof resumed.summary) => ({ rows: s.rows, skipped: s.skipped, errors: s.errors, problems: s.problems });
    expect(strip(resumed.summary)).toEqual(strip(uninterrupted.summary));
    expect(resumed.summary.errors).toEqual([]);
  });
});
