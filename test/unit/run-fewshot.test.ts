// --num-fewshot through the run engine (null backend, fixture tasks): the exact prompt the runner is
// asked, its stability across runs, and its place in the cell id.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { evaluate, type EvaluateOptions } from '../../harness/run/evaluate.ts';
import { cellId } from '../../harness/run/plan.ts';
import { nullLogprob } from '../../runners/null.ts';
import { readRecords } from '../../results/store.ts';
import type { RunRecord, SampleRecord } from '../../results/schema.ts';

const TASK_MODULE = new URL('../fixtures/run/tasks.ts', import.meta.url).href;
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function options(extra: Partial<EvaluateOptions> = {}): EvaluateOptions {
  const outDir = mkdtempSync(join(tmpdir(), 'run-fewshot-'));
  dirs.push(outDir);
  return {
    suites: [], tasks: ['mc-ok'], models: ['fixture-model'], pefts: [], backend: 'null', protocol: null, limit: null, seed: 7,
    dataPath: null, offline: true, outDir, taskModule: TASK_MODULE, ...extra,
  };
}
const records = (outDir: string): RunRecord[] => readRecords(join(outDir, 'records.jsonl')).records;
const samples = (outDir: string): SampleRecord[] => records(outDir).filter((r): r is SampleRecord => r.kind === 'sample');
const strip = (s: SampleRecord) => ({ doc_id: s.doc_id, prompt_hash: s.prompt_hash, loglikelihoods: s.loglikelihoods, metrics: s.metrics });

// Doc q3 of the fixture task (test/fixtures/run/tasks.ts), seed 7, K = 2. The two examples were drawn
// independently of suites/fewshot.ts, in Python from the sampler's documented stream:
//   hashlib.sha256(f"7\0q3\0{counter}").digest()[:6] big-endian % 5 over [q1..q5], skipping q3 and repeats
// -> q5, then q2. The layout is lm-eval's build_qa_turn: question + gold continuation + "\n\n" per example.
const Q3_TWO_SHOT = 'Question: ice is cold\n\nQuestion: the sky is blue\n\nQuestion: water boils at';
const Q3_CHOICES = [' 100 C', ' 50 C', ' 0 C', ' 10 C'];

describe('--num-fewshot', () => {
  it('asks the runner the hand-written 2-shot prompt for one document', async () => {
    const o = options({ numFewshot: 2 });
    await evaluate(o);
    const q3 = samples(o.outDir).find((s) => s.doc_id === 'q3')!;
    // The null runner's loglikelihood is a hash of (context, continuation): equal values mean the runner saw exactly this context.
    expect(q3.loglikelihoods).toEqual(Q3_CHOICES.map((c) => nullLogprob(Q3_TWO_SHOT, c)));
    expect(q3.prompt_hash).toBe(createHash('sha256').update(Q3_TWO_SHOT).digest('hex').slice(0, 16));
  });

  it('is stable across runs and with --limit, and changes with the seed', async () => {
    const a = options({ numFewshot: 2 });
    const b = options({ numFewshot: 2 });
    await evaluate(a);
    await evaluate(b);
    expect(samples(b.outDir).map(strip)).toEqual(samples(a.outDir).map(strip));
    // --limit cuts the documents asked, not the pool the examples come from (q5 is an example for q3).
    const limited = options({ numFewshot: 2, limit: 3 });
    await evaluate(limited);
    expect(samples(limited.outDir).map(strip)).toEqual(samples(a.outDir).map(strip).slice(0, 3));
    const reseeded = options({ numFewshot: 2, seed: 8 });
    await evaluate(reseeded);
    expect(samples(reseeded.outDir).map((s) => s.prompt_hash)).not.toEqual(samples(a.outDir).map((s) => s.prompt_hash));
  });

  it('is part of the cell id; zero-shot ids are unchanged', () => {
    const cell = { model: 'm', peft: null, task: 't', protocol: 'loglikelihood' as const, backend: 'null' as const, limit: null, seed: 1, dataPath: null };
    const zero = cellId({ ...cell, numFewshot: 0 });
    // The zero-shot hash is the one computed before --num-fewshot existed: sha256 of the JSON inputs list.
    const before = createHash('sha256').update(JSON.stringify(['m', null, null, 't', 'loglikelihood', 'null', null, 1, null])).digest('hex').slice(0, 12);
    expect(zero).toBe(`m/base/t/${before}`);
    expect(cellId({ ...cell, numFewshot: 2 })).not.toBe(zero);
    expect(cellId({ ...cell, numFewshot: 3 })).not.toBe(cellId({ ...cell, numFewshot: 2 }));
  });

  it('more shots than the task has other documents fails the cell with the fix in the message', async () => {
    const o = options({ numFewshot: 5 });
    const { summary } = await evaluate(o);
    expect(summary.errors.map((e) => e.message)).toEqual(['--num-fewshot 5: expected an integer from 0 to 4 (the task\'s other documents)']);
  });

  it('generation prompts get the examples\' prompts and targets', async () => {
    const o = options({ numFewshot: 2, protocol: 'generation' });
    await evaluate(o);
    const q3 = samples(o.outDir).find((s) => s.doc_id === 'q3')!;
    // Same draw (q5, q2); targets are the gold answers trimmed; the prompt does not end in whitespace, so a space delimits.
    expect(q3.prompt_hash).toBe(createHash('sha256').update('Question: ice is cold\n\nQuestion: the sky is blue\n\nQuestion: water boils at').digest('hex').slice(0, 16));
  });
});
