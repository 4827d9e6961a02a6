// Every task against its bundled sample: loads offline, and every document yields a well-formed
// request for each protocol the task declares. Sample sizes and choice counts come from the
// samples' SOURCE.md files and the upstream dataset cards.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../results/errors.ts';
import { resolveTasks, SUITE_TASKS, TASKS } from '../../suites/registry.ts';
import { SUITES, type Task } from '../../suites/types.ts';

const OFFLINE = { offline: true, env: { HF_HUB_CACHE: '/nonexistent-llama-eval-cache' } };

// SOURCE.md: 50 items per LLM-Adapters / medical sample, 20 for hellaswag and each MMLU subject,
// medical-vqa's 10 questions, 6 closed and 4 open (suites/data/medical-vqa/SOURCE.md).
const SAMPLE_SIZE: Record<string, number> = { hellaswag: 20, 'medical-vqa-closed': 6, 'medical-vqa-open': 4 };
for (const s of ['anatomy', 'clinical_knowledge', 'college_biology', 'college_medicine', 'medical_genetics', 'professional_medicine']) SAMPLE_SIZE[`mmlu_${s}`] = 20;

// Options per question: PIQA 2 solutions, SIQA 3 answers, HellaSwag 4 endings, WinoGrande 2 options,
// BoolQ no/yes, PubMedQA yes/no/maybe, MedQA/MedMCQA/MMLU A-D (dataset cards); ARC has 3-5 (all 4 in this sample).
const CHOICES: Record<string, number> = { boolq: 2, piqa: 2, siqa: 3, hellaswag: 4, winogrande: 2, 'arc-easy': 4, 'arc-challenge': 4, openbookqa: 4, pubmedqa: 3, medqa: 4, medmcqa: 4 };

// Generation tasks that report several metrics per sample (open VQA answers: EM, token F1, recall).
const MULTI_METRIC = new Set(['medical-vqa-open']);

const bundled = TASKS.filter((t) => !t.name.startsWith('legalbench_') && t.name !== 'casehold');

describe('bundled samples', () => {
  it.each(bundled.map((t) => [t.name, t] as [string, Task]))('%s loads offline and yields well-formed requests', async (name, task) => {
    const out = await task.load(OFFLINE);
    if (out.status !== 'loaded') throw new Error(out.reason);
    expect(out.source).toMatch(/^bundled sample \(suites\/data\//);
    expect(out.docs.length).toBe(SAMPLE_SIZE[name] ?? 50);
    expect(out.dataHash).toMatch(/^[0-9a-f]{64}$/);
    const ids = new Set(out.docs.map((d) => task.docId(d)));
    expect(ids.size).toBe(out.docs.length);
    expect(task.protocols.length).toBeGreaterThan(0);
    for (const doc of out.docs) {
      if (task.protocols.includes('loglikelihood')) {
        const mc = task.multipleChoice!(doc);
        const expected = CHOICES[name] ?? 4;
        expect(mc.choices.length).toBe(expected);
        expect(mc.gold).toBeGreaterThanOrEqual(0);
        expect(mc.gold).toBeLessThan(expected);
        for (const c of mc.choices) expect(c.trim().length).toBeGreaterThan(0);
        if (mc.contexts) expect(mc.contexts.length).toBe(mc.choices.length);
        else expect(mc.context.length).toBeGreaterThan(0);
        if (mc.normLengths) expect(mc.normLengths.every((n) => n > 0)).toBe(true);
      }
      if (task.protocols.includes('generation')) {
        const g = task.generation!(doc);
        expect(g.prompt.length).toBeGreaterThan(0);
        expect(g.target.length).toBeGreaterThan(0);
        expect(g.maxTokens).toBeGreaterThan(0);
        // Image tasks carry exactly one non-empty encoded image per prompt; text tasks none.
        if (name.startsWith('medical-vqa')) expect(g.images?.map((i) => i.length > 0)).toEqual([true]);
        else expect(g.images).toBeUndefined();
        if (MULTI_METRIC.has(name)) {
          // Open answers are scored by exact match and token overlap, so a wrapped answer would not
          // score 1 on all of them; the reference answer itself scores 1 on every metric reported.
          const metrics = task.scoreGeneration!(doc, g.target);
          expect(Object.keys(metrics).length).toBeGreaterThan(0);
          for (const [metric, v] of Object.entries(metrics)) {
            expect(task.metrics.generation, metric).toContain(metric);
            expect(v, metric).toBe(1);
          }
          // ... and a wrong answer scores below 1 on each.
          const wrong = task.scoreGeneration!(doc, 'zzz qqq');
          for (const v of Object.values(wrong)) expect(v).toBeLessThan(1);
        } else {
          // The reference answer, fed back as the response, scores 1: the extraction finds it.
          const metrics = task.scoreGeneration!(doc, `the correct answer is ${g.target}`);
          expect(Object.values(metrics)).toEqual([1]);
        }
      }
    }
  });

  it('file hashes match sha256sum and --limit changes the data hash', async () => {
    const task = TASKS.find((t) => t.name === 'medqa')!;
    const all = await task.load(OFFLINE);
    const five = await task.load({ ...OFFLINE, limit: 5 });
    if (all.status !== 'loaded' || five.status !== 'loaded') throw new Error('not loaded');
    const file = all.files[0]!;
    // coreutils sha256sum: an independent implementation of the file hash.
    expect(file.sha256).toBe(execFileSync('sha256sum', [file.path], { encoding: 'utf8' }).split(' ')[0]);
    expect(five.docs).toEqual(all.docs.slice(0, 5));
    expect(five.dataHash).not.toBe(all.dataHash);
    const again = await task.load({ ...OFFLINE, limit: 5 });
    expect(again.status === 'loaded' && again.dataHash).toBe(five.dataHash);
  });

  it('declares a request builder for each protocol it lists', () => {
    for (const t of TASKS) {
      if (t.protocols.includes('loglikelihood')) expect(t.multipleChoice, t.name).toBeTypeOf('function');
      if (t.protocols.includes('generation')) {
        expect(t.generation, t.name).toBeTypeOf('function');
        expect(t.scoreGeneration, t.name).toBeTypeOf('function');
      }
      for (const p of t.protocols) expect(t.metrics[p]?.length, `${t.name} ${p}`).toBeGreaterThan(0);
    }
  });
});

describe('registry', () => {
  it('holds the issue\'s task list per suite', () => {
    expect(SUITE_TASKS.commonsense).toEqual(['boolq', 'piqa', 'siqa', 'hellaswag', 'winogrande', 'arc-easy', 'arc-challenge', 'openbookqa']);
    expect(SUITE_TASKS.arithmetic).toEqual(['gsm8k', 'aqua', 'svamp', 'mawps', 'addsub', 'singleeq', 'multiarith']);
    expect(SUITE_TASKS.medical).toEqual([
      'pubmedqa', 'medqa', 'medmcqa',
      'mmlu_anatomy', 'mmlu_clinical_knowledge', 'mmlu_college_biology', 'mmlu_college_medicine', 'mmlu_medical_genetics', 'mmlu_professional_medicine',
    ]);
    expect(SUITE_TASKS['medical-vqa']).toEqual(['medical-vqa-closed', 'medical-vqa-open']);
    // 149 LegalBench task folders in the bundled copy (its SOURCE.md) plus CaseHOLD.
    expect(SUITE_TASKS.legal.length).toBe(150);
    expect(SUITE_TASKS.legal).toContain('legalbench_abercrombie');
    expect(new Set(TASKS.map((t) => t.name)).size).toBe(TASKS.length);
    expect(Object.keys(SUITE_TASKS)).toEqual([...SUITES]);
  });

  it('resolves suites and tasks in the given order, each once', () => {
    const names = resolveTasks(['gsm8k', 'arithmetic', 'boolq', 'gsm8k']).map((t) => t.name);
    expect(names).toEqual(['gsm8k', 'aqua', 'svamp', 'mawps', 'addsub', 'singleeq', 'multiarith', 'boolq']);
  });

  it('names the closest tasks for an unknown name', () => {
    expect(() => resolveTasks(['hellaswg'])).toThrow(/unknown task or suite "hellaswg"; did you mean hellaswag/);
    expect(() => resolveTasks(['medcal'])).toThrow(/did you mean medical/);
    expect(() => resolveTasks(['nope'])).toThrow(InputError);
  });
});
