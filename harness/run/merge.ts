// `llama-eval merge`: the out dirs of `run --shard i/N` (one per machine) -> one run, as if it had
// run unsharded. Checks first that the shards are the N slices of one plan (same plan hash, each
// index once), then concatenates their records under one run id. A cell that --shard split into
// document ranges is rebuilt from its ranges' samples, in range order, so its metrics come from the
// same values summed in the same order as the unsharded cell (suites/score.ts meanStderr).
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../../results/errors.ts';
import type { ManifestRecord, MetricRecord, RunRecord, SampleRecord } from '../../results/schema.ts';
import { appendRecords, readRecords, writeJsonAtomic } from '../../results/store.ts';
import { meanStderr } from '../../suites/score.ts';
import type { ShardManifest } from './execute.ts';
import type { Cell } from './plan.ts';
import { summarize, type RunSummary, type SkipEntry } from './summary.ts';

interface ShardInput {
  dir: string;
  manifest: ManifestRecord;
  shard: ShardManifest;
  records: RunRecord[];
  skipped: SkipEntry[];
}

function readShard(dir: string): ShardInput {
  const path = join(dir, 'records.jsonl');
  if (!existsSync(path)) throw new InputError(`merge: ${path} does not exist; give the --out directories of the shard runs`);
  const { records, problems } = readRecords(path);
  if (problems.length > 0) throw new InputError(`merge: ${problems[0]!.message}; resume that shard (llama-eval run ... --resume --out ${dir}) before merging`);
  const manifest = records.find((r): r is ManifestRecord => r.kind === 'manifest');
  if (!manifest) throw new InputError(`merge: ${path} holds no manifest record, so it is not a llama-eval run`);
  const shard = manifest.config.shard as ShardManifest | undefined;
  if (!shard || typeof shard.plan_hash !== 'string' || !Array.isArray(shard.plan)) {
    throw new InputError(`merge: ${dir} was not run with --shard i/N (its manifest records no shard); only shard runs can be merged`);
  }
  let skipped: SkipEntry[] = [];
  const results = join(dir, 'results.json');
  if (existsSync(results)) skipped = (JSON.parse(readFileSync(results, 'utf8')) as { skipped?: SkipEntry[] }).skipped ?? [];
  return { dir, manifest, shard, records, skipped };
}

/** The shards must be exactly the N slices of one plan: same hash and N, every index once. */
function checkShards(shards: readonly ShardInput[]): void {
  const first = shards[0]!;
  for (const s of shards) {
    if (s.shard.plan_hash !== first.shard.plan_hash || s.shard.count !== first.shard.count) {
      throw new InputError(`merge: ${s.dir} (shard ${s.shard.index}/${s.shard.count}, plan ${s.shard.plan_hash}) comes from a different run plan than ${first.dir} (shard ${first.shard.index}/${first.shard.count}, plan ${first.shard.plan_hash}); merge only the shards of one llama-eval run command`);
    }
  }
  const byIndex = new Map<number, string>();
  for (const s of shards) {
    const seen = byIndex.get(s.shard.index);
    if (seen !== undefined) throw new InputError(`merge: shard ${s.shard.index}/${s.shard.count} is given twice (${seen} and ${s.dir}); give each shard's directory once`);
    byIndex.set(s.shard.index, s.dir);
  }
  const missing = Array.from({ length: first.shard.count }, (_, i) => i).filter((i) => !byIndex.has(i));
  if (missing.length > 0) {
    throw new InputError(`merge: missing shard${missing.length > 1 ? 's' : ''} ${missing.map((i) => `${i}/${first.shard.count}`).join(', ')}; run them (llama-eval run ... --shard ${missing[0]}/${first.shard.count}) and give their --out directories too`);
  }
}

/** A range cell's samples of its finished attempt: the last n (its metric records' n) before those metric records. */
function finishedSamples(records: readonly RunRecord[], cellId: string): { samples: SampleRecord[]; metrics: MetricRecord[] } | null {
  const mine = records.filter((r) => r.cell_id === cellId);
  const firstMetric = mine.findIndex((r) => r.kind === 'metric');
  if (firstMetric < 0) return null;
  let lastMetric = firstMetric;
  while (mine[lastMetric + 1]?.kind === 'metric') lastMetric++;
  // A resumed range may hold an earlier, failed attempt's samples too: the finished one is the last block.
  const metrics = mine.slice(firstMetric, lastMetric + 1) as MetricRecord[];
  const n = metrics[0]!.n;
  const samples = mine.slice(0, firstMetric).filter((r): r is SampleRecord => r.kind === 'sample').slice(-n);
  return samples.length === n ? { samples, metrics } : null;
}

export interface MergeResult {
  summary: RunSummary;
  shards: number;
}

export function mergeShards(dirs: readonly string[], outDir: string): MergeResult {
  if (dirs.length === 0) throw new InputError('merge: no shard directories given; pass the --out directory of every `llama-eval run --shard i/N`');
  const shards = dirs.map(readShard).sort((a, b) => a.shard.index - b.shard.index);
  checkShards(shards);
  const recordsPath = join(outDir, 'records.jsonl');
  if (existsSync(recordsPath)) throw new InputError(`merge: ${recordsPath} already exists; give an empty --out directory`);
  mkdirSync(outDir, { recursive: true });
  const runId = `${new Date().toISOString().replace(/[:.]/g, '-')}-${randomBytes(3).toString('hex')}-merged`;
  const plan: Cell[] = shards[0]!.shard.plan;
  const { shard: _shard, ...config } = shards[0]!.manifest.config;
  const manifest: ManifestRecord = {
    ...shards[0]!.manifest, run_id: runId, time: new Date().toISOString(),
    config: { ...config, merged_from: shards.map((s) => ({ dir: s.dir, run_id: s.manifest.run_id, shard: `${s.shard.index}/${s.shard.count}` })) },
  };
  const out: RunRecord[] = [manifest];
  // Range cells, by the unsharded cell they belong to: their finished samples and metric names, per range index.
  const ranges = new Map<string, Map<number, { samples: SampleRecord[]; metrics: MetricRecord[] } | null>>();
  const partCount = new Map<string, number>();
  for (const s of shards) {
    const partOf = new Map<string, { baseId: string; index: number; count: number }>();
    for (const r of s.records) {
      if (r.kind === 'manifest') continue;
      const match = /^(.*)\/docs-(\d+)of(\d+)$/.exec(r.cell_id);
      if (!match) {
        out.push({ ...r, run_id: runId });
        continue;
      }
      const [, baseId = '', index = '0', count = '0'] = match;
      partOf.set(r.cell_id, { baseId, index: Number(index) - 1, count: Number(count) });
      // A range's own metric records are for its range only; the whole cell's are recomputed below.
      if (r.kind !== 'metric' && r.kind !== 'sample') out.push({ ...r, run_id: runId, cell_id: baseId });
    }
    for (const [cellId, p] of partOf) {
      const byIndex = ranges.get(p.baseId) ?? new Map();
      byIndex.set(p.index, finishedSamples(s.records, cellId));
      ranges.set(p.baseId, byIndex);
      partCount.set(p.baseId, p.count);
    }
  }
  for (const cell of plan) {
    const parts = ranges.get(cell.id);
    if (!parts) continue;
    const count = partCount.get(cell.id)!;
    const done = Array.from({ length: count }, (_, i) => parts.get(i) ?? null);
    if (done.some((d) => d === null)) continue; // its error records (or none: "did not finish") tell why
    const all = done.flatMap((d) => d!.samples);
    out.push(...all.map((r) => ({ ...r, run_id: runId, cell_id: cell.id })));
    for (const m of done[0]!.metrics) {
      // Same values in the same (document) order as the unsharded cell's own loop: the same sums.
      const values = all.map((r) => r.metrics[m.metric]).filter((v): v is number => typeof v === 'number');
      out.push({ ...m, run_id: runId, cell_id: cell.id, time: new Date().toISOString(), ...meanStderr(values), n: values.length });
    }
  }
  appendRecords(recordsPath, out);
  const skipped = new Map<string, SkipEntry>();
  for (const s of shards) for (const e of s.skipped) skipped.set(`${e.model}\u0000${e.peft}\u0000${e.task}`, e);
  const { records, problems } = readRecords(recordsPath);
  const summary = summarize({ runId, outDir, plan: { cells: plan, skipped: [] }, records, skipped: [...skipped.values()], problems: problems.map((p) => p.message) });
  writeJsonAtomic(join(outDir, 'results.json'), summary);
  return { summary, shards: shards.length };
}
