// Generation scoring against an independent implementation: LLM-Adapters' own extract_answer_number /
// extract_answer_letter and `abs(label - predict) <= 0.001` (evaluate.py @816657208af4), run in Python on
// the `output` field of every bundled arithmetic item (the reference solutions shipped in the upstream
// files). The lists below are the items Python scored wrong; everything else scored right.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TASKS } from '../../suites/registry.ts';

// python3: for x in json.load(open(f'{t}/test.json')): flag = abs(float(x['answer']) - extract_answer_number(t, x['output'])) <= 0.001
// (aqua: extract_answer_letter(x['output']) == x['answer']); printed [i + 1 for each false flag].
const PYTHON_WRONG: Record<string, number[]> = {
  gsm8k: [2, 5, 8, 10, 11, 15, 18, 23, 25, 26, 28, 30, 31, 32, 33, 36, 37, 38, 40, 42, 43, 47, 48],
  svamp: [1, 9, 14, 17, 20, 23, 25, 31, 34, 37, 41, 42, 48],
  mawps: Array.from({ length: 50 }, (_, i) => i + 1), // mawps ships empty outputs: no number, float('inf')
  addsub: [8, 15],
  singleeq: [],
  multiarith: [2],
  aqua: [1, 3, 6, 7, 10, 13, 16, 17, 22, 23, 26, 27, 28, 29, 30, 32, 34, 35, 36, 38, 39, 41, 42, 44, 45, 46, 49, 50],
};

describe('arithmetic extraction matches LLM-Adapters evaluate.py on the upstream outputs', () => {
  it.each(Object.keys(PYTHON_WRONG))('%s', async (name) => {
    const task = TASKS.find((t) => t.name === name)!;
    const out = await task.load({ offline: true, env: {} });
    if (out.status !== 'loaded') throw new Error(out.reason);
    const raw = JSON.parse(readFileSync(out.files[0]!.path, 'utf8')) as { output: string }[];
    const wrong = out.docs.flatMap((doc, i) => (task.scoreGeneration!(doc, raw[i]!.output).acc === 1 ? [] : [i + 1]));
    expect(wrong).toEqual(PYTHON_WRONG[name]);
  });
});
