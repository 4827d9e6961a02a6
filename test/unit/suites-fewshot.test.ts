// Few-shot prompts in lm-eval's layout (lm_eval/api/task.py build_qa_turn: question + " " + answer +
// "\n\n" per example, after the description) and the seeded per-document sampler.
import { describe, expect, it } from 'vitest';
import { InputError } from '../../results/errors.ts';
import { fewshotSampler, withFewshot } from '../../suites/fewshot.ts';
import { multipleChoice } from '../../suites/multiple-choice.ts';
import { TASKS } from '../../suites/registry.ts';

const ids = Array.from({ length: 20 }, (_, i) => `d${i}`);
const sample = fewshotSampler(ids, (d) => d, 1234);

describe('fewshotSampler', () => {
  it('draws k distinct documents, never the one asked about, the same for the same seed and id', () => {
    for (const id of ids) {
      const shots = sample(id, 5);
      expect(shots).toHaveLength(5);
      expect(new Set(shots).size).toBe(5);
      expect(shots).not.toContain(id);
      expect(sample(id, 5)).toEqual(shots);
    }
    // Another seed gives another draw for at least one document (20 docs x 5 shots: equal draws everywhere is out of reach).
    const other = fewshotSampler(ids, (d) => d, 4321);
    expect(ids.some((id) => other(id, 5).join() !== sample(id, 5).join())).toBe(true);
    expect(sample('d3', 0)).toEqual([]);
  });

  it('refuses more shots than there are other documents', () => {
    expect(sample('d0', 19)).toHaveLength(19);
    expect(() => sample('d0', 20)).toThrow(InputError);
    expect(() => sample('d0', 20)).toThrow(/--num-fewshot 20: expected an integer from 0 to 19/);
    expect(() => sample('d0', -1)).toThrow(/--num-fewshot -1/);
  });
});

describe('withFewshot', () => {
  it('places question + " " + gold answer + "\\n\\n" per example before the question', () => {
    const a = multipleChoice('Question: 1+1?\nAnswer:', ['2', '3'], 0);
    const b = multipleChoice('Question: 2+2?\nAnswer:', ['5', '4'], 1);
    const q = multipleChoice('Question: 3+3?\nAnswer:', ['6', '7'], 0);
    // Written by hand from build_qa_turn (tgt_delim " ", few_delim "\n\n"):
    expect(withFewshot(q, [a, b]).context).toBe('Question: 1+1?\nAnswer: 2\n\nQuestion: 2+2?\nAnswer: 4\n\nQuestion: 3+3?\nAnswer:');
    expect(withFewshot(q, [a, b]).choices).toEqual(q.choices);
    expect(withFewshot(q, [])).toEqual(q);
  });

  it('keeps MMLU\'s description first, once', async () => {
    const task = TASKS.find((t) => t.name === 'mmlu_medical_genetics')!;
    const out = await task.load({ offline: true, limit: 2, env: {} });
    if (out.status !== 'loaded') throw new Error(out.reason);
    const [first, second] = out.docs.map((d) => task.multipleChoice!(d));
    const desc = 'The following are multiple choice questions (with answers) about medical genetics.\n\n';
    const shot = withFewshot(second!, [first!]).context;
    // Row 1 of medical_genetics_test.csv (gold B) as the example, by hand.
    expect(shot.startsWith(`${desc}In a Robertsonian translocation fusion occurs at the:\nA. telomeres.\nB. centromeres.\nC. histones.\nD. ends of the long arms.\nAnswer: B\n\n`)).toBe(true);
    expect(shot.split(desc).length).toBe(2);
    expect(shot.endsWith(second!.context.slice(desc.length))).toBe(true);
  });

  it('winogrande examples use the gold option\'s partial context and every choice context gets the shots', async () => {
    const task = TASKS.find((t) => t.name === 'winogrande')!;
    const out = await task.load({ offline: true, limit: 2, env: {} });
    if (out.status !== 'loaded') throw new Error(out.reason);
    const [first, second] = out.docs.map((d) => task.multipleChoice!(d));
    const shot = withFewshot(second!, [first!]);
    // Item 1: "Sarah was a much better surgeon than Maria so _ always got the easier cases.", answer option2 (Maria).
    const example = 'Sarah was a much better surgeon than Maria so Maria always got the easier cases.\n\n';
    expect(shot.contexts).toEqual(second!.contexts!.map((c) => example + c));
  });
});
