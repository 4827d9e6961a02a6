// --shard i/N: the slice of the plan each shard runs (harness/run/plan.ts shardPlan), the document
// range a split cell evaluates (docRange), and the flag's parsing. Expected slices are worked out by
// hand from the rule in docs/scale.md (cell k -> shard k mod N; fewer cells than shards: p = ceil(N /
// cells) ranges per cell, range u -> shard u mod N; range j of D documents = [floor(jD/p), floor((j+1)D/p))).
import { describe, expect, it } from 'vitest';
import { parseShard } from '../../harness/cli/run.ts';
import { docRange, planRun, shardPlan, type RunSpec } from '../../harness/run/plan.ts';
import { InputError } from '../../results/errors.ts';

const spec = (tasks: string[], limit: number | null): RunSpec => ({
  models: ['tiny-llama-2'], pefts: [], tasks: tasks.map((name) => ({ name, protocols: ['loglikelihood'] })),
  backend: 'null', protocol: null, limit, seed: 1, dataPath: null,
});

describe('shardPlan', () => {
  it('deals whole cells round-robin when there are at least as many cells as shards', () => {
    const plan = planRun(spec(['a', 'b', 'c', 'd', 'e'], 10));
    const tasks = [0, 1].map((i) => shardPlan(plan, { index: i, count: 2 }).cells.map((c) => c.task));
    expect(tasks).toEqual([['a', 'c', 'e'], ['b', 'd']]);
    // Whole cells keep the unsharded id, so an unsharded run and a shard recognise each other's cells.
    expect(shardPlan(plan, { index: 1, count: 2 }).cells[0]!.id).toBe(plan.cells[1]!.id);
    expect(shardPlan(plan, { index: 0, count: 1 })).toBe(plan);
  });

  it('splits cells into document ranges when there are fewer cells than shards; every range runs exactly once', () => {
    const plan = planRun(spec(['a', 'b'], 10));
    // p = ceil(3 / 2) = 2 ranges per cell; units a0 a1 b0 b1 -> shards 0 1 2 0.
    const slices = [0, 1, 2].map((i) => shardPlan(plan, { index: i, count: 3 }).cells);
    expect(slices.map((cells) => cells.map((c) => `${c.task}:${c.part?.index}`))).toEqual([['a:0', 'b:1'], ['a:1'], ['b:0']]);
    const a1 = slices[1]![0]!;
    expect(a1.id).toBe(`${plan.cells[0]!.id}/docs-2of2`);
    expect(a1.part).toEqual({ index: 1, count: 2, baseId: plan.cells[0]!.id });
    const all = slices.flat().map((c) => c.id);
    expect(new Set(all).size).toBe(4);
  });

  it('never makes more ranges than --limit documents, so no range is empty', () => {
    const plan = planRun(spec(['a'], 2));
    const slices = [0, 1, 2, 3].map((i) => shardPlan(plan, { index: i, count: 4 }).cells);
    expect(slices.map((cells) => cells.length)).toEqual([1, 1, 0, 0]);
    expect(slices[0]![0]!.part).toMatchObject({ index: 0, count: 2 });
  });
});

describe('docRange', () => {
  const docs = Array.from({ length: 10 }, (_, i) => i);
  it('gives contiguous ranges that cover the documents once, in order', () => {
    const ranges = [0, 1, 2].map((index) => docRange({ part: { index, count: 3, baseId: 'x' } }, docs));
    // floor(j * 10 / 3): 0, 3, 6, 10.
    expect(ranges).toEqual([[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]);
    expect(docRange({}, docs)).toBe(docs);
  });
});

describe('--shard parsing', () => {
  it('reads i/N', () => {
    expect(parseShard('2/4')).toEqual({ index: 2, count: 4 });
    expect(parseShard(undefined)).toBeUndefined();
  });
  it.each(['4/4', '1/0', '-1/4', 'a/4', '1', '1/4/2', ''])('rejects %j with an InputError naming the form', (value) => {
    expect(() => parseShard(value)).toThrow(InputError);
    expect(() => parseShard(value)).toThrow(/--shard .*expected i\/N with 0 <= i < N/);
  });
});
