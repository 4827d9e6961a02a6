// Loading run directories into the history store. A run's records.jsonl stays the source of
// truth: ingest reads it with the same reader as reports, and every row is keyed by run id plus
// the record's identity, so ingesting a run twice (or a resumed run again) adds only what is new.
import { createHash } from 'node:crypto';
import type { DuckDBConnection } from '@duckdb/node-api';
import { cellIdentities } from '../../reports/cells.ts';
import { ReportInputError } from '../../reports/errors.ts';
import { loadRun, type LoadedRun } from '../../reports/run.ts';
import { InputError } from '../../results/errors.ts';
import type { ManifestRecord, RunRecord } from '../../results/schema.ts';
import { insertNew, utcTimestamp, type Cell, type Column } from './rows.ts';
import { withHistoryStore, type StoreOptions } from './store.ts';

export interface IngestedRun {
  run_id: string;
  /** The run directory as given. */
  dir: string;
  /** New rows per table; all zero when the run was already in the store. */
  added: Record<'runs' | 'cells' | 'metrics' | 'samples' | 'memory' | 'throughput' | 'kernels' | 'drift', number>;
  /** records.jsonl lines that were skipped (`path:line: why`), as reports list them. */
  problems: string[];
}

export interface IngestSummary {
  db: string;
  runs: IngestedRun[];
}

/** sha256 over one role's files (path and hash, sorted), or null when the run names none. */
export function roleHash(manifest: ManifestRecord, role: 'model' | 'adapter' | 'data'): string | null {
  const files = manifest.files.filter((f) => f.role === role).map((f) => `${f.path}\0${f.sha256}\n`).sort();
  return files.length === 0 ? null : createHash('sha256').update(files.join('')).digest('hex');
}

const text = (name: string, expr?: string): Column => ({ name, kind: 'text', ...(expr ? { expr } : {}) });
const num = (name: string): Column => ({ name, kind: 'num' });
const TIME = (name: string) => text(name, `CAST("${name}" AS TIMESTAMP)`);
const json = (v: unknown): string | null => (v === undefined ? null : JSON.stringify(v));

const RUN_COLS = [text('run_id'), TIME('time'), text('source'), text('package_version'), text('git_sha'), text('node_version'),
  text('ort_version'), text('host'), num('seed'), text('config'), text('files'), text('model_sha256'), text('adapter_sha256'),
  text('data_sha256'), TIME('ingested_at')];
const CELL_COLS = [text('run_id'), text('cell_id'), text('model'), text('peft'), text('task'), num('total_params'),
  num('trainable_params'), { name: 'failed', kind: 'bool' } as Column, text('error')];
const METRIC_COLS = [text('run_id'), text('cell_id'), text('task'), text('metric'), num('value'), num('stderr'), num('n'),
  text('model'), text('peft'), TIME('time')];
const SAMPLE_COLS = [text('run_id'), text('cell_id'), text('task'), text('doc_id'), text('prompt_hash'), text('target'),
  text('response'), text('loglikelihoods', 'CAST(CAST("loglikelihoods" AS JSON) AS DOUBLE[])'),
  text('metrics', 'CAST(CAST("metrics" AS JSON) AS MAP(VARCHAR, DOUBLE))')];
const MEMORY_COLS = [text('run_id'), text('cell_id'), num('peak_rss_bytes'), num('arena_bytes'), num('kv_cache_bytes'),
  num('device_bytes'), num('total_bytes')];
const THROUGHPUT_COLS = [text('run_id'), text('cell_id'), num('prefill_tokens_per_s'), num('decode_tokens_per_s'), num('tokens'), num('seconds')];
const KERNEL_COLS = [text('run_id'), text('cell_id'), text('kernel'), text('variant'), text('backend'), text('device'),
  text('shape'), text('dtype'), num('median_ms'), num('min_ms'), num('max_ms'), num('device_ms'), num('gflops'), num('gbps'),
  text('bound'), num('roofline_fraction')];
const DRIFT_COLS = [text('run_id'), text('cell_id'), text('model'), text('peft'), text('against'), text('backend'), text('data'),
  num('n_tokens'), num('kl_mean'), num('kl_stderr'), num('kl_median'), num('kl_p99'), num('kl_max'), num('top1_agreement'),
  num('top1_stderr'), num('ppl_base'), num('ppl_adapted'), num('ppl_ratio'), num('ppl_ratio_stderr'), num('delta_p_rms'), TIME('time')];

function cellRows(runId: string, records: readonly RunRecord[]): Cell[][] {
  const ids = cellIdentities(records);
  const params = new Map<string, { total: number; trainable: number }>();
  const errors = new Map<string, string>();
  for (const r of records) {
    if (r.kind === 'params' && !params.has(r.cell_id)) params.set(r.cell_id, { total: r.total_params, trainable: r.trainable_params });
    if (r.kind === 'error' && !errors.has(r.cell_id)) errors.set(r.cell_id, r.message);
  }
  return [...ids].map(([cellId, id]) => [runId, cellId, id.model, id.peft, id.task, params.get(cellId)?.total ?? null,
    params.get(cellId)?.trainable ?? null, errors.has(cellId), errors.get(cellId) ?? null]);
}

interface PreparedRun {
  dir: string;
  loaded: LoadedRun;
  manifest: ManifestRecord;
}

/** Reads and checks one run directory; done before the store is opened, to hold its lock briefly. */
function prepare(dir: string): PreparedRun {
  let loaded: LoadedRun;
  try {
    loaded = loadRun(dir);
  } catch (e) {
    if (e instanceof ReportInputError) throw new InputError(e.message);
    throw e;
  }
  const { records } = loaded;
  const manifest = records.find((r): r is ManifestRecord => r.kind === 'manifest');
  if (!manifest) {
    throw new InputError(`no manifest record in ${loaded.recordsPath}: a run's first record describes it (run id, time, file hashes); ` +
      'ingest run directories written by `llama-eval run`');
  }
  const runId = manifest.run_id;
  const foreign = records.find((r) => r.run_id !== runId);
  if (foreign) {
    throw new InputError(`${loaded.recordsPath} mixes runs: manifest says run_id "${runId}" but a ${foreign.kind} record says "${foreign.run_id}"; ingest one run per directory`);
  }
  return { dir, loaded, manifest };
}

async function ingestOne(conn: DuckDBConnection, { dir, loaded, manifest }: PreparedRun): Promise<IngestedRun> {
  const { records } = loaded;
  const runId = manifest.run_id;
  const hashes = { model: roleHash(manifest, 'model'), adapter: roleHash(manifest, 'adapter'), data: roleHash(manifest, 'data') };
  const existing = (await conn.runAndReadAll(
    'SELECT model_sha256 AS model, adapter_sha256 AS adapter, data_sha256 AS data, source FROM runs WHERE run_id = $1', [runId],
  )).getRowObjectsJson()[0];
  if (existing) {
    const differ = (['model', 'adapter', 'data'] as const).filter((k) => (existing[k] ?? null) !== hashes[k]);
    if (differ.length > 0) {
      throw new InputError(`run id "${runId}" in ${loaded.recordsPath} is already in the history store (from ${String(existing.source)}) ` +
        `with different ${differ.join('/')} file hashes; run ids must name one run — give the new run another id or use another --db`);
    }
  }
  const by = <K extends RunRecord['kind']>(kind: K) => records.filter((r): r is Extract<RunRecord, { kind: K }> => r.kind === kind);
  const added: IngestedRun['added'] = { runs: 0, cells: 0, metrics: 0, samples: 0, memory: 0, throughput: 0, kernels: 0, drift: 0 };
  // One transaction per run: a crash mid-ingest leaves the store as it was, never half a run.
  await conn.run('BEGIN TRANSACTION');
  try {
    added.runs = await insertNew(conn, 'runs', RUN_COLS, [[runId, utcTimestamp(manifest.time), loaded.recordsPath,
      manifest.package_version, manifest.git_sha, manifest.node_version, manifest.ort_version, json(manifest.host), manifest.seed,
      json(manifest.config), json(manifest.files), hashes.model, hashes.adapter, hashes.data, utcTimestamp(new Date().toISOString())]]);
    added.cells = await insertNew(conn, 'cells', CELL_COLS, cellRows(runId, records));
    added.metrics = await insertNew(conn, 'metrics', METRIC_COLS, by('metric').map((r) => [runId, r.cell_id, r.task, r.metric,
      r.value, r.stderr, r.n, r.model, r.peft, utcTimestamp(r.time)]));
    added.samples = await insertNew(conn, 'samples', SAMPLE_COLS, by('sample').map((r) => [runId, r.cell_id, r.task, String(r.doc_id),
      r.prompt_hash, json(r.target), json(r.response), json(r.loglikelihoods), JSON.stringify(r.metrics)]));
    added.memory = await insertNew(conn, 'memory', MEMORY_COLS, by('memory').map((r) => [runId, r.cell_id, r.peak_rss_bytes,
      r.arena_bytes, r.kv_cache_bytes, r.device_bytes, r.total_bytes ?? null]));
    added.throughput = await insertNew(conn, 'throughput', THROUGHPUT_COLS, by('throughput').map((r) => [runId, r.cell_id,
      r.prefill_tokens_per_s, r.decode_tokens_per_s, r.tokens, r.seconds]));
    added.kernels = await insertNew(conn, 'kernels', KERNEL_COLS, by('kernel').map((r) => [runId, r.cell_id, r.kernel, r.variant,
      r.backend, r.device, r.shape, r.dtype, r.median_ms, r.min_ms, r.max_ms, r.device_ms ?? null, r.gflops, r.gbps, r.bound,
      r.roofline_fraction]));
    added.drift = await insertNew(conn, 'drift', DRIFT_COLS, by('drift').map((r) => [runId, r.cell_id, r.model, r.peft, r.against,
      r.backend, r.data, r.n_tokens, r.kl_mean, r.kl_stderr, r.kl_median, r.kl_p99, r.kl_max, r.top1_agreement, r.top1_stderr,
      r.ppl_base, r.ppl_adapted, r.ppl_ratio, r.ppl_ratio_stderr, r.delta_p_rms, utcTimestamp(r.time)]));
    await conn.run('COMMIT');
  } catch (e) {
    await conn.run('ROLLBACK');
    throw e;
  }
  return { run_id: runId, dir, added, problems: loaded.problems };
}

/**
 * Ingests each run directory (or records.jsonl path) into the store at `dbPath`, creating it if
 * needed. Idempotent. `llama-eval run` calls this at its end; the CLI's `history ingest` too.
 */
export async function ingestRuns(dbPath: string, runDirs: string[], options: StoreOptions = {}): Promise<IngestSummary> {
  if (runDirs.length === 0) throw new InputError('history ingest: name at least one run directory (a directory holding records.jsonl)');
  const prepared = runDirs.map(prepare);
  const runs = await withHistoryStore(dbPath, { ...options, readOnly: false }, async (conn) => {
    const out: IngestedRun[] = [];
    for (const run of prepared) out.push(await ingestOne(conn, run));
    return out;
  });
  return { db: dbPath, runs };
}
