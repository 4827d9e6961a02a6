// Runs picked from the history store for the report commands. `regress --baseline last-green`:
// the newest earlier run in the store that can serve as the nightly baseline. "Green" is what the store can know without a gate record: the run
// finished every cell (no failed cell). It must also share a config with the current run and
// not disagree with it on any data file's hash, since regress would refuse that pair anyway.
import { existsSync } from 'node:fs';
import { loadRun } from '../../reports/run.ts';
import { cellIdentities, configKey } from '../../reports/cells.ts';
import { InputError } from '../../results/errors.ts';
import type { ManifestRecord } from '../../results/schema.ts';
import { withHistoryStore } from './store.ts';

export interface LastGreen {
  run_id: string;
  /** The baseline's records.jsonl, as it was ingested. */
  source: string;
}

interface FileRef { role: string; path: string; sha256: string }

/** Finds the baseline for the run in `currentDir`; InputError when the store holds none. */
export async function lastGreenRun(dbPath: string, currentDir: string): Promise<LastGreen> {
  const current = loadRun(currentDir);
  const manifest = current.records.find((r): r is ManifestRecord => r.kind === 'manifest');
  if (!manifest) throw new InputError(`--baseline last-green needs the current run's manifest record; none in ${current.recordsPath}`);
  const configs = new Set([...cellIdentities(current.records).values()].map((c) => configKey(c.model, c.peft)));
  const data = new Map(manifest.files.filter((f) => f.role === 'data').map((f) => [f.path, f.sha256]));
  const candidates = await withHistoryStore(dbPath, { readOnly: true }, async (conn) =>
    (await conn.runAndReadAll(`
      SELECT r.run_id, r.source, CAST(r.files AS VARCHAR) AS files,
             list(DISTINCT c.model || '/' || coalesce(c.peft, 'base')) AS configs, bool_or(c.failed) AS failed
      FROM runs r JOIN cells c USING (run_id)
      WHERE r.run_id <> $1 AND r.time < CAST($2 AS TIMESTAMP)
      GROUP BY r.run_id, r.source, r.files, r.time
      ORDER BY r.time DESC, r.run_id DESC`, [manifest.run_id, new Date(manifest.time).toISOString().replace('T', ' ').replace('Z', '')],
    )).getRowObjectsJS());
  const skipped: string[] = [];
  for (const c of candidates) {
    const id = String(c.run_id);
    const source = String(c.source);
    if (c.failed === true) { skipped.push(`${id} (a failed cell)`); continue; }
    if (!(c.configs as string[]).some((k) => configs.has(k))) { skipped.push(`${id} (no config in common)`); continue; }
    const files = JSON.parse(String(c.files)) as FileRef[];
    const clash = files.find((f) => f.role === 'data' && data.has(f.path) && data.get(f.path) !== f.sha256);
    if (clash) { skipped.push(`${id} (different ${clash.path})`); continue; }
    if (!existsSync(source)) { skipped.push(`${id} (its records ${source} are gone)`); continue; }
    return { run_id: id, source };
  }
  throw new InputError(`--baseline last-green: history store ${dbPath} has no earlier run of ${manifest.run_id}'s configs on the same data ` +
    `without a failed cell${skipped.length > 0 ? `; passed over: ${skipped.slice(0, 5).join(', ')}` : ''}. ` +
    'Ingest a good run first (`llama-eval history ingest <dir>`) or name a baseline directory');
}

/**
 * The `n` newest runs in the store (by manifest time) whose records.jsonl still exists, newest
 * first, for `leaderboard --from-history`; `missing` names the ones whose records are gone.
 */
export async function recentRuns(dbPath: string, n: number): Promise<{ runs: LastGreen[]; missing: string[] }> {
  if (!(Number.isInteger(n) && n > 0)) throw new InputError(`--from-history must be a positive number of runs, got ${n}`);
  const rows = await withHistoryStore(dbPath, { readOnly: true }, async (conn) =>
    (await conn.runAndReadAll(`SELECT run_id, source FROM runs ORDER BY time DESC, run_id DESC LIMIT ${n}`)).getRowObjectsJS());
  const runs: LastGreen[] = [];
  const missing: string[] = [];
  for (const r of rows) {
    const found = { run_id: String(r.run_id), source: String(r.source) };
    if (existsSync(found.source)) runs.push(found);
    else missing.push(`${found.run_id} (${found.source})`);
  }
  return { runs, missing };
}
