import { describe, expect, it } from 'vitest';
import { cellId, planRun, type RunSpec } from '../../harness/run/plan.ts';
import { selectTasks } from '../../harness/run/tasks.ts';
import { TASKS } from '../fixtures/run/tasks.ts';
import { InputError } from '../../results/errors.ts';

const spec: RunSpec = {
  models: ['tiny-llama-3', './ckpt/llama'],
  pefts: [],
  tasks: [{ name: 'boolq', protocols: ['loglikelihood'] }, { name: 'gsm8k', protocols: ['generation'] }],
  backend: 'null', protocol: null, limit: 5, seed: 1234, dataPath: null,
};

describe('planRun', () => {
  it('expands models x peft x tasks, with the readable <model>/<peft|base>/<task>/<hash> id reports parse', () => {
    const plan = planRun({ ...spec, pefts: [{ arg: 'lora', label: 'lora r=8 alpha=8 targets=q_proj+v_proj' }, { arg: 'qlora', label: 'qlora r=64' }] });
    expect(plan.cells).toHaveLength(2 * 2 * 2);
    expect(plan.cells[0]!.id).toMatch(/^tiny-llama-3\/lora_r=8_alpha=8_targets=q_proj\+v_proj\/boolq\/[0-9a-f]{12}$/);
    // A path model must not add '/' segments: reports/cells.ts splits the id on '/'.
    expect(plan.cells.find((c) => c.model === './ckpt/llama')!.id.split('/')).toHaveLength(4);
    expect(new Set(plan.cells.map((c) => c.id)).size).toBe(plan.cells.length);
  });

  it('gives the same ids for the same inputs, however the spec object was built', () => {
    const reordered: RunSpec = { dataPath: null, seed: 1234, limit: 5, protocol: null, backend: 'null', tasks: spec.tasks, pefts: [], models: spec.models };
    expect(planRun(reordered).cells.map((c) => c.id)).toEqual(planRun(spec).cells.map((c) => c.id));
  });

  it('changes the id when any input that decides the numbers changes', () => {
    const { id: _, ...cell } = planRun(spec).cells[0]!;
    const base = cellId(cell);
    const variants = [
      { ...cell, model: 'tiny-llama-2' }, { ...cell, task: 'piqa' }, { ...cell, protocol: 'generation' as const },
      { ...cell, backend: 'reference' as const }, { ...cell, limit: 6 }, { ...cell, limit: null }, { ...cell, seed: 1 },
      { ...cell, dataPath: 'x.jsonl' }, { ...cell, peft: { arg: 'lora', label: 'lora r=8' } }, { ...cell, dtype: 'fp16' as const },
    ];
    const ids = variants.map(cellId);
    expect(ids).not.toContain(base);
    expect(new Set(ids).size).toBe(variants.length);
  });

  it('--dtype fp32 (the default) keeps the ids cells had before the flag existed; fp16 gets its own', () => {
    const before = planRun(spec).cells.map((c) => c.id);
    expect(planRun({ ...spec, dtype: 'fp32' }).cells.map((c) => c.id)).toEqual(before);
    const fp16 = planRun({ ...spec, dtype: 'fp16' }).cells;
    expect(fp16.every((c) => c.dtype === 'fp16' && !before.includes(c.id))).toBe(true);
  });

  it('lists a task that lacks the forced protocol as skipped instead of planning it', () => {
    const plan = planRun({ ...spec, models: ['m'], protocol: 'generation' });
    expect(plan.cells.map((c) => c.task)).toEqual(['gsm8k']);
    expect(plan.skipped).toEqual([{ model: 'm', peft: null, task: 'boolq', reason: expect.stringContaining('generation') }]);
  });
});

describe('selectTasks', () => {
  it('takes --suite and --task together, in registry order, each once', () => {
    expect(selectTasks(TASKS, ['arithmetic'], ['mc-ok', 'gen-only']).map((t) => t.name)).toEqual(['mc-ok', 'gen-only']);
    expect(selectTasks(TASKS, [], [])).toHaveLength(TASKS.length);
  });

  it('rejects an unknown task or suite with a did-you-mean', () => {
    expect(() => selectTasks(TASKS, [], ['mc-okk'])).toThrow(InputError);
    expect(() => selectTasks(TASKS, [], ['mc-okk'])).toThrow(/did you mean "mc-ok"/);
    expect(() => selectTasks(TASKS, ['medicl'], [])).toThrow(/--suite medicl: unknown suite; did you mean "medical"/);
  });
});
