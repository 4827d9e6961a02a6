// What the history store answers: a metric over time for one config, the items that changed
// between two runs, and arbitrary SQL on a read-only connection.
import type { DuckDBConnection, DuckDBValue } from '@duckdb/node-api';
import { InputError } from '../../results/errors.ts';
import { withHistoryStore } from './store.ts';

const READ_ONLY = { readOnly: true } as const;
const ISO = `strftime(%s, '%Y-%m-%dT%H:%M:%S.%gZ')`;
const iso = (col: string) => ISO.replace('%s', col);

type Row = Record<string, unknown>;
async function rows(conn: DuckDBConnection, sql: string, values: DuckDBValue[] = []): Promise<Row[]> {
  return (await conn.runAndReadAll(sql, values)).getRowObjectsJS() as Row[];
}
const list = (xs: readonly unknown[], max = 12) => (xs.length === 0 ? 'none' : xs.slice(0, max).map(String).join(', ') + (xs.length > max ? `, … (${xs.length} in all)` : ''));

export interface TrendQuery {
  task: string;
  model: string;
  /** PEFT method; null for the base model. */
  peft: string | null;
  /** Defaults to the config's only metric, or `acc` when it has several. */
  metric?: string;
  /** Keep the most recent N runs. */
  last?: number;
}

export interface TrendPoint {
  run_id: string;
  cell_id: string;
  /** The run's manifest time, ISO-8601 UTC. */
  time: string;
  value: number;
  stderr: number | null;
  n: number;
  git_sha: string | null;
  /** The run's combined data-file hash (docs/history.md): a change means the task data changed. */
  data_sha256: string | null;
}

export interface TrendResult {
  task: string;
  model: string;
  peft: string | null;
  metric: string;
  /** Oldest first. */
  points: TrendPoint[];
}

/** The metric of one task for one model/peft over time, oldest run first. */
export async function historyTrend(dbPath: string, q: TrendQuery): Promise<TrendResult> {
  if (q.last !== undefined && !(Number.isInteger(q.last) && q.last > 0)) throw new InputError(`--last must be a positive integer, got ${q.last}`);
  return withHistoryStore(dbPath, READ_ONLY, async (conn) => {
    const config = 'm.task = $1 AND m.model = $2 AND m.peft IS NOT DISTINCT FROM $3';
    const params: DuckDBValue[] = [q.task, q.model, q.peft];
    const metrics = (await rows(conn, `SELECT DISTINCT metric FROM metrics m WHERE ${config} ORDER BY metric`, params)).map((r) => String(r.metric));
    if (metrics.length === 0) {
      const known = (await rows(conn, `SELECT DISTINCT model || '/' || coalesce(peft, 'base') AS k FROM metrics WHERE task = $1 ORDER BY k`, [q.task])).map((r) => r.k);
      throw new InputError(`history store ${dbPath} has no ${q.task} scores for ${q.model}/${q.peft ?? 'base'}; ` +
        `configs with ${q.task} scores: ${list(known)} (the model/peft names are as the runs recorded them; omit --peft for the base model)`);
    }
    const metric = q.metric ?? (metrics.length === 1 ? metrics[0]! : metrics.includes('acc') ? 'acc' : null);
    if (metric === null || !metrics.includes(metric)) {
      throw new InputError(`--metric ${q.metric ?? '(not given)'}: ${q.task} for ${q.model}/${q.peft ?? 'base'} has metrics ${list(metrics)}; pass one with --metric`);
    }
    const limit = q.last === undefined ? '' : `LIMIT ${q.last}`;
    const found = await rows(conn, `
      SELECT * FROM (
        SELECT m.run_id, m.cell_id, ${iso('r.time')} AS time, r.time AS t, m.value, m.stderr, m.n, r.git_sha, r.data_sha256
        FROM metrics m JOIN runs r USING (run_id)
        WHERE ${config} AND m.metric = $4
        ORDER BY r.time DESC, m.run_id DESC, m.cell_id DESC ${limit}
      ) ORDER BY t, run_id, cell_id`, [...params, metric]);
    const points = found.map((r) => ({
      run_id: String(r.run_id), cell_id: String(r.cell_id), time: String(r.time), value: Number(r.value),
      stderr: r.stderr === null ? null : Number(r.stderr), n: Number(r.n), git_sha: r.git_sha === null ? null : String(r.git_sha),
      data_sha256: r.data_sha256 === null ? null : String(r.data_sha256),
    }));
    return { task: q.task, model: q.model, peft: q.peft, metric, points };
  });
}

export interface Flip {
  task: string;
  model: string;
  peft: string | null;
  doc_id: string;
  metric: string;
  a: number;
  b: number;
}

export interface FlipsResult {
  a: string;
  b: string;
  /** Items (per metric) present in both runs. */
  compared: number;
  flips: Flip[];
}

/**
 * Items whose per-sample metric differs between runs A and B. Items pair on model, peft, task,
 * doc id and metric; two runs of one config each pair whatever the configs are called (an
 * adapter against another adapter), as `compare` does.
 */
export async function historyFlips(dbPath: string, runA: string, runB: string, filter: { task?: string; metric?: string } = {}): Promise<FlipsResult> {
  return withHistoryStore(dbPath, READ_ONLY, async (conn) => {
    const present = new Set((await rows(conn, 'SELECT run_id FROM runs WHERE run_id IN ($1, $2)', [runA, runB])).map((r) => String(r.run_id)));
    for (const id of [runA, runB]) {
      if (!present.has(id)) {
        const known = (await rows(conn, 'SELECT run_id FROM runs ORDER BY time DESC, run_id LIMIT 13')).map((r) => r.run_id);
        throw new InputError(`run "${id}" is not in history store ${dbPath}; most recent runs: ${list(known)} (history ingest adds runs)`);
      }
    }
    const configs = await rows(conn, `SELECT run_id, count(DISTINCT model || '/' || coalesce(peft, '')) AS k FROM cells
      WHERE run_id IN ($1, $2) AND NOT failed GROUP BY run_id`, [runA, runB]);
    const oneEach = configs.length === 2 && configs.every((r) => Number(r.k) === 1);
    const sameConfig = oneEach ? 'TRUE' : 'a.model = b.model AND a.peft IS NOT DISTINCT FROM b.peft';
    const paired = await rows(conn, `
      WITH long AS (
        SELECT run_id, cell_id, task, doc_id, unnest(map_entries(metrics)) AS e FROM samples WHERE run_id IN ($1, $2)
      ), s AS (
        SELECT l.run_id, c.model, c.peft, l.task, l.doc_id, l.e.key AS metric, l.e.value AS value
        FROM long l JOIN cells c USING (run_id, cell_id)
        WHERE ($3 IS NULL OR l.task = $3) AND ($4 IS NULL OR l.e.key = $4)
      )
      SELECT a.task, a.model, a.peft, a.doc_id, a.metric, a.value AS a, b.value AS b
      FROM s a JOIN s b ON a.task = b.task AND a.doc_id = b.doc_id AND a.metric = b.metric AND ${sameConfig}
      WHERE a.run_id = $1 AND b.run_id = $2
      ORDER BY a.task, a.model, a.peft NULLS FIRST, a.metric, try_cast(a.doc_id AS BIGINT) NULLS LAST, a.doc_id`,
    [runA, runB, filter.task ?? null, filter.metric ?? null]);
    if (paired.length === 0) {
      throw new InputError(`runs "${runA}" and "${runB}" share no scored items${filter.task ? ` of task ${filter.task}` : ''}` +
        `${filter.metric ? ` with metric ${filter.metric}` : ''}: pair runs of the same tasks and configs (a run of one config pairs with any other)`);
    }
    const flips = paired.filter((r) => r.a !== r.b).map((r) => ({
      task: String(r.task), model: String(r.model), peft: r.peft === null ? null : String(r.peft), doc_id: String(r.doc_id),
      metric: String(r.metric), a: Number(r.a), b: Number(r.b),
    }));
    return { a: runA, b: runB, compared: paired.length, flips };
  });
}

export interface QueryResult {
  columns: string[];
  rows: Record<string, unknown>[];
}

/** JSON-safe cell: BIGINT as a number when exact, else a string; times as ISO text. */
function plain(v: unknown): unknown {
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

/** Runs user SQL on a read-only connection; a write or a file access fails with InputError. */
export async function historyQuery(dbPath: string, sql: string): Promise<QueryResult> {
  if (sql.trim() === '') throw new InputError('history query: give one SQL statement, e.g. "SELECT run_id, time FROM runs ORDER BY time"');
  return withHistoryStore(dbPath, READ_ONLY, async (conn) => {
    try {
      const reader = await conn.runAndReadAll(sql);
      return { columns: reader.columnNames(), rows: (reader.getRowObjectsJS() as Row[]).map((r) => plain(r) as Row) };
    } catch (e) {
      const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0] ?? '';
      if (/read-only mode|Permission Error/.test(msg)) {
        throw new InputError(`history query runs on a read-only connection, so this statement is refused (${msg}); ` +
          'the store changes only through `llama-eval history ingest`');
      }
      throw new InputError(`history query: ${msg}`);
    }
  });
}
