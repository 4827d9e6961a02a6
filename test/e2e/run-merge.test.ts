// `llama-eval run --shard i/N` on N "machines" (out dirs) + `llama-eval merge` gives the results.json
// rows (value, stderr, n, cell id) of the same run unsharded — the unsharded run is the independent
// reference here: it scores every document in one cell process, the merge rebuilds from shard samples.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MERGE_COMMAND } from '../../harness/cli/merge-args.ts';
import { RUN_COMMAND } from '../../harness/cli/run-args.ts';
import type { RunSummary } from '../../harness/run/summary.ts';
import { readRecords } from '../../results/store.ts';
import { runCli } from './reports-cli-harness.ts';

const root = mkdtempSync(join(tmpdir(), 'run-merge-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const dir = (name: string): string => join(root, `${name}-${++dirs}`);
const cli = (argv: string[]) => runCli(argv, [RUN_COMMAND, MERGE_COMMAND]);
const summary = (out: string): RunSummary => JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as RunSummary;

/** Runs `argv` unsharded and as `count` shards, merges the shards; returns both summaries and the shard dirs. */
async function shardedAndWhole(argv: string[], count: number) {
  const whole = dir('whole');
  const r = await cli(['run', ...argv, '--out', whole]);
  expect(r.code, r.err).toBe(0);
  const shards: string[] = [];
  for (let i = 0; i < count; i++) {
    shards.push(dir(`shard${i}`));
    const s = await cli(['run', ...argv, '--shard', `${i}/${count}`, '--out', shards[i]!]);
    expect(s.code, s.err).toBe(0);
  }
  const merged = dir('merged');
  // Shards in reverse order: merge orders them by their recorded index, not by argument order.
  const m = await cli(['merge', ...[...shards].reverse(), '--out', merged]);
  expect(m.code, m.err).toBe(0);
  expect(m.out).toContain(`merged ${count} shards`);
  return { whole: summary(whole), merged: summary(merged), shards, mergedDir: merged };
}

const common = ['--no-cache', '--no-history', '--offline', '--seed', '7'];

describe('run --shard + merge = the unsharded run', () => {
  it('null backend, 2 cells over 3 shards (document ranges): identical rows, samples in document order', async () => {
    const { whole, merged, shards, mergedDir } = await shardedAndWhole(['--tasks', 'boolq,piqa', '--limit', '3', '--backend', 'null', ...common], 3);
    expect(merged.rows).toEqual(whole.rows);
    expect(merged.rows.map((r) => [r.task, r.metric, r.n])).toEqual([['boolq', 'acc', 3], ['piqa', 'acc', 3], ['piqa', 'acc_norm', 3]]);
    expect(merged.errors).toEqual([]);
    expect(merged.problems).toEqual([]);
    // 2 cells < 3 shards: each cell is split into 2 ranges, and the ids say which range.
    const shard0 = readRecords(join(shards[0]!, 'records.jsonl')).records;
    expect(new Set(shard0.filter((r) => r.kind === 'sample').map((r) => r.cell_id.split('/').at(-1)))).toEqual(new Set(['docs-1of2', 'docs-2of2']));
    const manifest = shard0.find((r) => r.kind === 'manifest');
    expect(manifest?.kind === 'manifest' && manifest.config.shard).toMatchObject({ index: 0, count: 3 });
    const all = readRecords(join(mergedDir, 'records.jsonl')).records;
    const samples = all.filter((r) => r.kind === 'sample');
    expect(samples).toHaveLength(6);
    expect(new Set(all.map((r) => r.run_id)).size).toBe(1);
  }, 120_000);

  it('null backend, 3 cells over 2 shards (whole cells): identical rows', async () => {
    const { whole, merged } = await shardedAndWhole(['--tasks', 'boolq,piqa,arc-easy', '--limit', '2', '--backend', 'null', ...common], 2);
    expect(merged.rows).toEqual(whole.rows);
    expect(merged.rows.length).toBeGreaterThanOrEqual(3);
  }, 120_000);

  it('ort backend with tiny-llama-2, 1 cell over 3 shards: identical value, stderr and n', async () => {
    const { whole, merged } = await shardedAndWhole(['--task', 'piqa', '--limit', '3', '--model', 'tiny-llama-2', '--backend', 'ort', ...common], 3);
    expect(merged.rows).toEqual(whole.rows);
    expect(merged.rows[0]).toMatchObject({ task: 'piqa', n: 3 });
    expect(merged.rows[0]!.stderr).not.toBeNull();
  }, 180_000);
});

describe('merge refuses shards that do not form one plan', () => {
  const argv = ['--task', 'boolq', '--limit', '2', '--backend', 'null', ...common];
  const shardDirs: string[] = [];
  const other = dir('other');
  const plain = dir('plain');
  it('prepares shards', async () => {
    for (let i = 0; i < 2; i++) {
      shardDirs.push(dir(`bad${i}`));
      expect((await cli(['run', ...argv, '--shard', `${i}/2`, '--out', shardDirs[i]!])).code).toBe(0);
    }
    expect((await cli(['run', ...argv.map((w) => (w === '7' ? '8' : w)), '--shard', '1/2', '--out', other])).code).toBe(0);
    expect((await cli(['run', ...argv, '--out', plain])).code).toBe(0);
  }, 120_000);

  it.each([
    ['a missing shard', () => [shardDirs[0]!], /missing shard 1\/2/],
    ['a shard given twice', () => [shardDirs[0]!, shardDirs[0]!], /shard 0\/2 is given twice/],
    ['a shard of another plan (--seed 8)', () => [shardDirs[0]!, other], /comes from a different run plan/],
    ['an unsharded run', () => [shardDirs[0]!, plain], /was not run with --shard i\/N/],
    ['a directory with no run', () => [shardDirs[0]!, join(root, 'nothing')], /records\.jsonl does not exist/],
  ])('%s: exit 2 naming it', async (_name, dirsOf, message) => {
    const r = await cli(['merge', ...dirsOf(), '--out', dir('refused')]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
  });
});
