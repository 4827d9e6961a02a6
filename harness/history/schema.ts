// The history store's tables. One row per record identity, so ingesting a run again is a no-op
// (INSERT ... ON CONFLICT DO NOTHING against these primary keys). Times are UTC TIMESTAMPs:
// DuckDB's TIMESTAMPTZ would render in the session time zone and make output host-dependent.
// Raising SCHEMA_VERSION means a store written by the old version is refused (see store.ts)
// unless a migration from it is added to MIGRATIONS.
import type { DuckDBConnection } from '@duckdb/node-api';

export const SCHEMA_VERSION = 2;

// Version 2 added `drift` (records of `llama-eval drift`). One statement serves the fresh store
// and the migration, so a migrated store has exactly the table a new one gets.
const DRIFT_DDL = `CREATE TABLE IF NOT EXISTS drift (
    run_id VARCHAR NOT NULL, cell_id VARCHAR NOT NULL, model VARCHAR NOT NULL, peft VARCHAR, against VARCHAR NOT NULL,
    backend VARCHAR NOT NULL, data VARCHAR NOT NULL, n_tokens BIGINT NOT NULL, kl_mean DOUBLE NOT NULL, kl_stderr DOUBLE,
    kl_median DOUBLE NOT NULL, kl_p99 DOUBLE NOT NULL, kl_max DOUBLE NOT NULL, top1_agreement DOUBLE NOT NULL, top1_stderr DOUBLE,
    ppl_base DOUBLE NOT NULL, ppl_adapted DOUBLE NOT NULL, ppl_ratio DOUBLE NOT NULL, ppl_ratio_stderr DOUBLE,
    delta_p_rms DOUBLE NOT NULL, time TIMESTAMP NOT NULL, PRIMARY KEY (run_id, cell_id, against, backend, data))`;

/**
 * Steps that take a store from version `v` to `v + 1`, keyed by `v`; a store with no path to
 * SCHEMA_VERSION is refused naming both versions.
 */
export const MIGRATIONS: Readonly<Record<number, readonly string[]>> = {
  1: [DRIFT_DDL],
};

export const HISTORY_TABLES = ['runs', 'cells', 'metrics', 'samples', 'memory', 'throughput', 'kernels', 'drift'] as const;

const DDL = [
  `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, written_by VARCHAR NOT NULL)`,
  // model/adapter/data_sha256 combine the manifest's per-file hashes of that role (null when the
  // run names no file of it), so runs of the same inputs can be found with one equality.
  `CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY, time TIMESTAMP NOT NULL, source VARCHAR NOT NULL,
    package_version VARCHAR NOT NULL, git_sha VARCHAR, node_version VARCHAR NOT NULL, ort_version VARCHAR,
    host JSON NOT NULL, seed BIGINT NOT NULL, config JSON NOT NULL, files JSON NOT NULL,
    model_sha256 VARCHAR, adapter_sha256 VARCHAR, data_sha256 VARCHAR, ingested_at TIMESTAMP NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS cells (
    run_id VARCHAR NOT NULL, cell_id VARCHAR NOT NULL, model VARCHAR NOT NULL, peft VARCHAR, task VARCHAR,
    total_params BIGINT, trainable_params BIGINT, failed BOOLEAN NOT NULL, error VARCHAR,
    PRIMARY KEY (run_id, cell_id))`,
  `CREATE TABLE IF NOT EXISTS metrics (
    run_id VARCHAR NOT NULL, cell_id VARCHAR NOT NULL, task VARCHAR NOT NULL, metric VARCHAR NOT NULL,
    value DOUBLE NOT NULL, stderr DOUBLE, n BIGINT NOT NULL, model VARCHAR NOT NULL, peft VARCHAR,
    time TIMESTAMP NOT NULL, PRIMARY KEY (run_id, cell_id, task, metric))`,
  // doc_id is VARCHAR: the record allows a string or an integer, and ids compare as text.
  `CREATE TABLE IF NOT EXISTS samples (
    run_id VARCHAR NOT NULL, cell_id VARCHAR NOT NULL, task VARCHAR NOT NULL, doc_id VARCHAR NOT NULL,
    prompt_hash VARCHAR NOT NULL, target JSON, response JSON, loglikelihoods DOUBLE[],
    metrics MAP(VARCHAR, DOUBLE) NOT NULL, PRIMARY KEY (run_id, cell_id, task, doc_id))`,
  `CREATE TABLE IF NOT EXISTS memory (
    run_id VARCHAR NOT NULL, cell_id VARCHAR NOT NULL, peak_rss_bytes BIGINT NOT NULL, arena_bytes BIGINT,
    kv_cache_bytes BIGINT, device_bytes BIGINT, total_bytes DOUBLE, PRIMARY KEY (run_id, cell_id))`,
  `CREATE TABLE IF NOT EXISTS throughput (
    run_id VARCHAR NOT NULL, cell_id VARCHAR NOT NULL, prefill_tokens_per_s DOUBLE, decode_tokens_per_s DOUBLE,
    tokens BIGINT NOT NULL, seconds DOUBLE NOT NULL, PRIMARY KEY (run_id, cell_id))`,
  `CREATE TABLE IF NOT EXISTS kernels (
    run_id VARCHAR NOT NULL, cell_id VARCHAR NOT NULL, kernel VARCHAR NOT NULL, variant VARCHAR NOT NULL,
    backend VARCHAR NOT NULL, device VARCHAR NOT NULL, shape VARCHAR NOT NULL, dtype VARCHAR NOT NULL,
    median_ms DOUBLE NOT NULL, min_ms DOUBLE NOT NULL, max_ms DOUBLE NOT NULL, device_ms DOUBLE,
    gflops DOUBLE NOT NULL, gbps DOUBLE NOT NULL, bound VARCHAR NOT NULL, roofline_fraction DOUBLE NOT NULL,
    PRIMARY KEY (run_id, kernel, variant, backend, device, shape, dtype))`,
  DRIFT_DDL,
];

/** Why a store cannot be used as-is: a message naming the file and both versions. */
export class SchemaVersionError extends Error {}

async function storedVersion(conn: DuckDBConnection): Promise<number | null> {
  const tables = (await conn.runAndReadAll(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' AND table_catalog = current_database()`,
  )).getRowObjectsJson().map((r) => String(r.table_name));
  if (tables.length === 0) return null; // a fresh file
  if (!tables.includes('schema_version')) {
    throw new SchemaVersionError(`is a DuckDB database but not a llama-eval history store (no schema_version table; it has ${tables.slice(0, 5).join(', ')})`);
  }
  const rows = (await conn.runAndReadAll('SELECT max(version) AS v FROM schema_version')).getRowObjectsJson();
  const v = rows[0]?.v;
  if (typeof v !== 'number') throw new SchemaVersionError('has an empty schema_version table (written by an interrupted create?)');
  return v;
}

/**
 * Makes `conn`'s database a store of SCHEMA_VERSION: creates it when empty, migrates an older one
 * when a migration path exists, and otherwise throws SchemaVersionError naming the versions.
 * With `readOnly` nothing is written: a fresh or older store is refused instead.
 */
export async function ensureSchema(conn: DuckDBConnection, writtenBy: string, readOnly: boolean): Promise<void> {
  let version = await storedVersion(conn);
  if (version === SCHEMA_VERSION) return;
  if (version !== null && version > SCHEMA_VERSION) {
    throw new SchemaVersionError(`was written by a newer llama-eval (history schema version ${version}); this one reads version ${SCHEMA_VERSION}. Upgrade llama-eval or use another --db`);
  }
  if (readOnly) {
    throw new SchemaVersionError(version === null
      ? 'holds no history yet; run `llama-eval history ingest <run dirs>` first'
      : `has history schema version ${version}; this llama-eval reads version ${SCHEMA_VERSION}; run \`llama-eval history ingest\` once to migrate it`);
  }
  await conn.run('BEGIN TRANSACTION');
  try {
    if (version === null) {
      for (const sql of DDL) await conn.run(sql);
      await conn.run('INSERT INTO schema_version VALUES ($1, $2)', [SCHEMA_VERSION, writtenBy]);
    } else {
      for (; version < SCHEMA_VERSION; version++) {
        const steps = MIGRATIONS[version];
        if (steps === undefined) {
          throw new SchemaVersionError(`was written with history schema version ${version}, and this llama-eval (version ${SCHEMA_VERSION}) has no migration from it. Move the file aside and re-ingest the runs (their records.jsonl files are the source of truth)`);
        }
        for (const sql of steps) await conn.run(sql);
      }
      await conn.run('UPDATE schema_version SET version = $1, written_by = $2', [SCHEMA_VERSION, writtenBy]);
    }
    await conn.run('COMMIT');
  } catch (e) {
    await conn.run('ROLLBACK');
    throw e;
  }
}
