// The history store: created idempotently, ingest idempotent and transactional, safe under two
// ingesting processes, and clear about stores it cannot use. Expected counts are computed here
// from the fixture records.jsonl text (JSON.parse per line), not through the ingest code.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, describe, expect, it } from 'vitest';
import { ingestRuns } from '../../harness/history/ingest.ts';
import { historyQuery } from '../../harness/history/queries.ts';
import { HISTORY_TABLES, SCHEMA_VERSION } from '../../harness/history/schema.ts';
import { defaultHistoryPath } from '../../harness/history/store.ts';
import { InputError } from '../../results/errors.ts';
import { FIXTURES_DIR } from '../fixtures/runs/generate.ts';

const tmp = mkdtempSync(join(tmpdir(), 'history-store-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const fixture = (name: string) => join(FIXTURES_DIR, name);
let dbCount = 0;
const newDb = () => join(tmp, `h${dbCount++}.duckdb`);

type Raw = Record<string, unknown> & { kind: string; cell_id: string };
const rawRecords = (dir: string): Raw[] =>
  readFileSync(join(dir, 'records.jsonl'), 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Raw);

/** Rows each table should get from one run: one per record of its kind; cells = distinct non-run, non-kernel cell ids. */
function expectedRows(dir: string): Record<string, number> {
  const recs = rawRecords(dir);
  const count = (kind: string) => recs.filter((r) => r.kind === kind).length;
  const cells = new Set(recs.filter((r) => !['manifest', 'kernel'].includes(r.kind)).map((r) => r.cell_id));
  return { runs: 1, cells: cells.size, metrics: count('metric'), samples: count('sample'), memory: count('memory'),
    throughput: count('throughput'), kernels: count('kernel'), drift: count('drift') };
}

async function tableCounts(db: string): Promise<Record<string, number>> {
  const sql = HISTORY_TABLES.map((t) => `(SELECT count(*) FROM ${t}) AS ${t}`).join(', ');
  return (await historyQuery(db, `SELECT ${sql}`)).rows[0] as Record<string, number>;
}

const sum = (xs: Record<string, number>[]) => Object.fromEntries(HISTORY_TABLES.map((t) => [t, xs.reduce((s, x) => s + (x[t] ?? 0), 0)]));

describe('history ingest', () => {
  const runs = ['nightly-base', 'nightly-drop', 'sweep'];

  it('loads every record kind of the fixture runs, one row per record', async () => {
    const db = newDb();
    const summary = await ingestRuns(db, runs.map(fixture));
    expect(summary.runs.map((r) => r.run_id)).toEqual(runs);
    summary.runs.forEach((r, i) => expect(r.added).toEqual(expectedRows(fixture(runs[i]!))));
    expect(await tableCounts(db)).toEqual(sum(runs.map((r) => expectedRows(fixture(r)))));
    const version = await historyQuery(db, 'SELECT version FROM schema_version');
    expect(version.rows).toEqual([{ version: SCHEMA_VERSION }]);
  });

  it('is idempotent: ingesting the same runs again changes nothing', async () => {
    const db = newDb();
    await ingestRuns(db, runs.map(fixture));
    const before = await historyQuery(db, 'SELECT run_id, cell_id, task, metric, value, stderr, n FROM metrics ORDER BY ALL');
    const again = await ingestRuns(db, runs.map(fixture));
    for (const r of again.runs) expect(Object.values(r.added)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(await tableCounts(db)).toEqual(sum(runs.map((r) => expectedRows(fixture(r)))));
    expect(await historyQuery(db, 'SELECT run_id, cell_id, task, metric, value, stderr, n FROM metrics ORDER BY ALL')).toEqual(before);
    expect((await historyQuery(db, 'SELECT count(*) AS n FROM schema_version')).rows).toEqual([{ n: 1 }]);
  });

  it('keys runs by their data hashes: same files, same data_sha256; one changed file, another', async () => {
    const db = newDb();
    await ingestRuns(db, ['nightly-base', 'nightly-drop', 'hash-mismatch'].map(fixture));
    const rows = (await historyQuery(db, 'SELECT run_id, data_sha256, model_sha256, adapter_sha256 FROM runs ORDER BY run_id')).rows;
    const by = new Map(rows.map((r) => [r.run_id, r]));
    // generate.ts: nightly-base and nightly-drop list identical data files; hash-mismatch changes medqa's.
    expect(by.get('nightly-base')?.data_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(by.get('nightly-drop')?.data_sha256).toBe(by.get('nightly-base')?.data_sha256);
    expect(by.get('hash-mismatch')?.data_sha256).not.toBe(by.get('nightly-base')?.data_sha256);
    // The fixtures name no model or adapter files.
    expect(by.get('nightly-base')?.model_sha256).toBeNull();
    expect(by.get('nightly-base')?.adapter_sha256).toBeNull();
  });

  it('a resumed run adds only the records written since the last ingest', async () => {
    const dir = join(tmp, 'resumed');
    mkdirSync(dir);
    const lines = readFileSync(join(fixture('nightly-base'), 'records.jsonl'), 'utf8').split('\n').filter((l) => l !== '');
    writeFileSync(join(dir, 'records.jsonl'), `${lines.slice(0, 100).join('\n')}\n`);
    const db = newDb();
    const first = await ingestRuns(db, [dir]);
    appendFileSync(join(dir, 'records.jsonl'), `${lines.slice(100).join('\n')}\n`);
    const second = await ingestRuns(db, [dir]);
    // Lines 2..100 of nightly-base are samples of its first cell (params record first, then 200 samples).
    expect(first.runs[0]?.added.samples).toBe(lines.slice(0, 100).filter((l) => l.includes('"kind":"sample"')).length);
    expect((first.runs[0]?.added.samples ?? 0) + (second.runs[0]?.added.samples ?? 0)).toBe(expectedRows(fixture('nightly-base')).samples);
    expect(second.runs[0]?.added.runs).toBe(0);
  });

  it('refuses a second run under an ingested run id with different data hashes', async () => {
    const db = newDb();
    await ingestRuns(db, [fixture('nightly-base')]);
    const dir = join(tmp, 'clash');
    mkdirSync(dir);
    // Same run id, but the medqa data file hash of hash-mismatch's manifest.
    const lines = readFileSync(join(fixture('nightly-base'), 'records.jsonl'), 'utf8').split('\n');
    const other = JSON.parse(readFileSync(join(fixture('hash-mismatch'), 'records.jsonl'), 'utf8').split('\n')[0]!) as { files: unknown };
    const manifest = { ...(JSON.parse(lines[0]!) as object), files: other.files };
    writeFileSync(join(dir, 'records.jsonl'), [JSON.stringify(manifest), ...lines.slice(1)].join('\n'));
    await expect(ingestRuns(db, [dir])).rejects.toThrow(/run id "nightly-base" .* already in the history store .* different data file hashes/);
  });

  it('rejects a missing run directory and a run without a manifest, naming the path', async () => {
    await expect(ingestRuns(newDb(), [join(tmp, 'nope')])).rejects.toThrow(InputError);
    await expect(ingestRuns(newDb(), [join(tmp, 'nope')])).rejects.toThrow(`run directory not found: ${join(tmp, 'nope')}`);
    const dir = join(tmp, 'no-manifest');
    mkdirSync(dir);
    const lines = readFileSync(join(fixture('nightly-base'), 'records.jsonl'), 'utf8').split('\n');
    writeFileSync(join(dir, 'records.jsonl'), lines.slice(1).join('\n'));
    await expect(ingestRuns(newDb(), [dir])).rejects.toThrow(`no manifest record in ${join(dir, 'records.jsonl')}`);
    await expect(ingestRuns(newDb(), [])).rejects.toThrow(InputError);
    const mixed = join(tmp, 'mixed');
    mkdirSync(mixed);
    writeFileSync(join(mixed, 'records.jsonl'), `${lines[0]}\n${lines[1]!.replace('"run_id":"nightly-base"', '"run_id":"other"')}\n`);
    const db = newDb();
    await expect(ingestRuns(db, [mixed])).rejects.toThrow(/mixes runs: manifest says run_id "nightly-base" but a params record says "other"/);
    // Runs are read before the store is opened: a bad run leaves no store behind.
    expect(existsSync(db)).toBe(false);
  });
});

describe('history store files', () => {
  it('defaults to $XDG_CACHE_HOME/llama-eval/history.duckdb, else ~/.cache', () => {
    expect(defaultHistoryPath({ XDG_CACHE_HOME: '/x/cache' })).toBe('/x/cache/llama-eval/history.duckdb');
    expect(defaultHistoryPath({})).toMatch(/\.cache\/llama-eval\/history\.duckdb$/);
  });

  it('a corrupt store file is an InputError naming its path', async () => {
    const db = join(tmp, 'corrupt.duckdb');
    writeFileSync(db, 'this is not a database\n'.repeat(500));
    await expect(ingestRuns(db, [fixture('sweep')])).rejects.toThrow(InputError);
    await expect(ingestRuns(db, [fixture('sweep')])).rejects.toThrow(`history store ${db} is corrupt`);
    await expect(historyQuery(db, 'SELECT 1')).rejects.toThrow(`history store ${db} is corrupt`);
  });

  it('a store cut short after a good write is reported as corrupt too', async () => {
    const good = newDb();
    await ingestRuns(good, [fixture('nightly-base')]);
    const db = join(tmp, 'truncated.duckdb');
    copyFileSync(good, db);
    writeFileSync(db, readFileSync(db).subarray(0, 5000));
    await expect(historyQuery(db, 'SELECT count(*) FROM runs')).rejects.toThrow(`history store ${db} is corrupt`);
  });

  async function setVersion(db: string, version: number): Promise<void> {
    const instance = await DuckDBInstance.create(db);
    const conn = await instance.connect();
    await conn.run(`UPDATE schema_version SET version = ${version}`);
    conn.closeSync();
    instance.closeSync();
  }

  it('refuses a store of an older schema version with no migration, naming both versions', async () => {
    // Version 0 never existed, so no migration leads from it (1 -> 2 exists: drift-history.test.ts).
    const db = newDb();
    await ingestRuns(db, [fixture('sweep')]);
    await setVersion(db, 0);
    await expect(ingestRuns(db, [fixture('sweep')])).rejects.toThrow(
      `history store ${db} was written with history schema version 0, and this llama-eval (version ${SCHEMA_VERSION}) has no migration from it`);
    await expect(historyQuery(db, 'SELECT 1')).rejects.toThrow(`has history schema version 0; this llama-eval reads version ${SCHEMA_VERSION}`);
  });

  it('refuses a store written by a newer llama-eval', async () => {
    const db = newDb();
    await ingestRuns(db, [fixture('sweep')]);
    await setVersion(db, SCHEMA_VERSION + 1);
    await expect(ingestRuns(db, [fixture('sweep')])).rejects.toThrow(`history schema version ${SCHEMA_VERSION + 1}); this one reads version ${SCHEMA_VERSION}`);
  });

  it('refuses a DuckDB database that is not a history store', async () => {
    const db = newDb();
    const instance = await DuckDBInstance.create(db);
    const conn = await instance.connect();
    await conn.run('CREATE TABLE prices (x INTEGER)');
    conn.closeSync();
    instance.closeSync();
    await expect(ingestRuns(db, [fixture('sweep')])).rejects.toThrow(`history store ${db} is a DuckDB database but not a llama-eval history store`);
  });

  it('query on a store that does not exist says how to create one', async () => {
    const db = join(tmp, 'absent', 'h.duckdb');
    await expect(historyQuery(db, 'SELECT 1')).rejects.toThrow(`no history store at ${db}; run \`llama-eval history ingest <run dirs>\` first`);
  });
});

describe('history store under concurrent processes', () => {
  const INGEST_URL = pathToFileURL(resolve('harness/history/ingest.ts')).href;
  // The child scripts live in a temp dir, where bare package names do not resolve.
  const DUCKDB_URL = pathToFileURL(createRequire(import.meta.url).resolve('@duckdb/node-api')).href;
  const children: ChildProcess[] = [];
  afterAll(() => { for (const c of children) c.kill(); });

  function child(script: string, args: string[]): { proc: ChildProcess; out: Promise<string>; exit: Promise<number | null> } {
    const proc = spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(proc);
    let out = '';
    proc.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
    const exit = new Promise<number | null>((done, fail) => { proc.on('error', fail); proc.on('exit', done); });
    return { proc, out: exit.then(() => out), exit };
  }

  it('two processes ingesting into one store at once both succeed and lose nothing', async () => {
    const db = newDb();
    const script = join(tmp, 'ingest-child.mts');
    // Each child ingests its runs one call at a time, so the two interleave on the file lock.
    writeFileSync(script, `
      import { ingestRuns } from ${JSON.stringify(INGEST_URL)};
      const [db, startAt, ...dirs] = process.argv.slice(2);
      while (Date.now() < Number(startAt)) await new Promise((r) => setTimeout(r, 2));
      let waits = 0;
      for (const dir of dirs) await ingestRuns(db, [dir], { onLockWait: () => { waits++; } });
      process.stdout.write(JSON.stringify({ waits }));
    `);
    const startAt = String(Date.now() + 2500); // both start after tsx has booted
    const a = child(script, [db, startAt, fixture('nightly-base'), fixture('sweep'), fixture('nightly-drop')]);
    const b = child(script, [db, startAt, fixture('nightly-drop'), fixture('sweep'), fixture('nightly-base')]);
    expect(await Promise.all([a.exit, b.exit])).toEqual([0, 0]);
    const waits = [await a.out, await b.out].map((o) => (JSON.parse(o) as { waits: number }).waits);
    // They really contended for the lock (otherwise this test proves nothing).
    expect(waits[0]! + waits[1]!).toBeGreaterThan(0);
    expect(await tableCounts(db)).toEqual(sum(['nightly-base', 'nightly-drop', 'sweep'].map((r) => expectedRows(fixture(r)))));
  }, 30_000);

  it('gives up with an InputError naming the store when the lock is held past --lock-timeout', async () => {
    const db = newDb();
    await ingestRuns(db, [fixture('sweep')]);
    const script = join(tmp, 'hold-child.mts');
    writeFileSync(script, `
      import duckdb from ${JSON.stringify(DUCKDB_URL)};
      const { DuckDBInstance } = duckdb;
      const instance = await DuckDBInstance.create(process.argv[2]);
      process.stdout.write('ready');
      setTimeout(() => instance.closeSync(), 20000);
    `);
    const holder = spawn(process.execPath, ['--import', 'tsx', script, db], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(holder);
    await new Promise<void>((ready, fail) => {
      holder.stdout?.once('data', () => ready());
      holder.once('exit', (code) => fail(new Error(`lock holder exited early with ${code}`)));
    });
    await expect(ingestRuns(db, [fixture('sweep')], { lockTimeoutMs: 300 })).rejects.toThrow(`history store ${db} is still locked by another process after 300 ms`);
    holder.kill();
    await new Promise((r) => holder.once('exit', r));
    // Once the holder is gone the store is whole and usable.
    expect((await tableCounts(db)).runs).toBe(1);
  }, 30_000);
});
