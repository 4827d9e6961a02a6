// Drift records in the history store: a `drift` table since schema version 2, and a version-1
// store (written before drift existed) migrated in place on the next ingest. Expected row values
// are the JSON of the records.jsonl lines, parsed here, not anything the ingest code returns.
import { appendFileSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, describe, expect, it } from 'vitest';
import { driftRecord } from '../../harness/drift/record.ts';
import { ingestRuns } from '../../harness/history/ingest.ts';
import { historyQuery } from '../../harness/history/queries.ts';
import { SCHEMA_VERSION } from '../../harness/history/schema.ts';
import type { DriftStats } from '../../reports/drift.ts';
import { FIXTURES_DIR } from '../fixtures/runs/generate.ts';

const tmp = mkdtempSync(join(tmpdir(), 'drift-history-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const stats = (kl: number, top1: number): DriftStats => ({
  positions: 40, kl_mean: { value: kl, stderr: kl / 10 }, kl_median: kl / 2, kl_p99: kl * 3, kl_p999: kl * 4, kl_max: kl * 5,
  kl_per_position: [], top1_agreement: { value: top1, stderr: 0.01 }, ppl_base: 10, ppl_adapted: 10.5,
  ln_ppl_ratio: { value: Math.log(1.05), stderr: 0.01 }, ppl_ratio: { value: 1.05, stderr: 0.0105 }, delta_p_rms: 0.02,
});

/** The sweep fixture run plus two drift records under its run id. */
function sweepWithDrift(): string {
  const dir = join(tmp, 'sweep-drift');
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(FIXTURES_DIR, 'sweep', 'records.jsonl'), join(dir, 'records.jsonl'));
  const time = '2026-11-20T04:00:00.000Z';
  const lines = [
    driftRecord({ runId: 'sweep', model: 'tiny-llama-2', peft: 'lora', against: 'base', backend: 'reference', data: 'boolq' }, stats(0.003, 0.95), time),
    driftRecord({ runId: 'sweep', model: 'tiny-llama-3.1', peft: null, against: 'nf4', backend: 'reference', data: 'notes.txt' }, stats(1e-4, 0.99), time),
  ].map((r) => JSON.stringify(r));
  appendFileSync(join(dir, 'records.jsonl'), `${lines.join('\n')}\n`);
  return dir;
}

const driftLines = (dir: string) => readFileSync(join(dir, 'records.jsonl'), 'utf8').split('\n')
  .filter((l) => l.includes('"kind":"drift"')).map((l) => JSON.parse(l) as Record<string, unknown>);

/** Turns a current store into what version 1 wrote: the same tables but drift, version 1. */
async function downgradeToV1(db: string): Promise<void> {
  const instance = await DuckDBInstance.create(db);
  const conn = await instance.connect();
  await conn.run('DROP TABLE drift');
  await conn.run('UPDATE schema_version SET version = 1');
  conn.closeSync();
  instance.closeSync();
}

describe('drift in the history store', () => {
  const run = sweepWithDrift();

  it('ingests drift records, one row each, with the record values', async () => {
    const db = join(tmp, 'a.duckdb');
    const summary = await ingestRuns(db, [run]);
    expect(summary.runs[0]!.added.drift).toBe(2);
    const rows = (await historyQuery(db, 'SELECT model, peft, against, backend, data, n_tokens, kl_mean, kl_stderr, kl_p99, kl_max, top1_agreement, ppl_ratio FROM drift ORDER BY model')).rows;
    const want = driftLines(run).map((r) => ({ model: r.model, peft: r.peft, against: r.against, backend: r.backend, data: r.data,
      n_tokens: r.n_tokens, kl_mean: r.kl_mean, kl_stderr: r.kl_stderr, kl_p99: r.kl_p99, kl_max: r.kl_max, top1_agreement: r.top1_agreement, ppl_ratio: r.ppl_ratio }));
    expect(rows).toEqual(want);
    // The drift cells join the cells table under their config.
    const cells = (await historyQuery(db, "SELECT model, peft FROM cells WHERE cell_id LIKE '%/drift' ORDER BY model")).rows;
    expect(cells).toEqual([{ model: 'tiny-llama-2', peft: 'lora' }, { model: 'tiny-llama-3.1', peft: null }]);
    // Again: nothing new.
    expect((await ingestRuns(db, [run])).runs[0]!.added.drift).toBe(0);
  });

  it('migrates a version-1 store to version 2 on ingest, keeping its rows', async () => {
    expect(SCHEMA_VERSION).toBe(2);
    const db = join(tmp, 'v1.duckdb');
    await ingestRuns(db, [join(FIXTURES_DIR, 'nightly-base')]);
    await downgradeToV1(db);
    // A read-only command does not migrate; it says how to.
    await expect(historyQuery(db, 'SELECT 1')).rejects.toThrow('has history schema version 1; this llama-eval reads version 2; run `llama-eval history ingest` once to migrate it');
    const metricsBefore = readFileSync(join(FIXTURES_DIR, 'nightly-base', 'records.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"kind":"metric"')).length;
    const summary = await ingestRuns(db, [run]);
    expect(summary.runs[0]!.added.drift).toBe(2);
    expect((await historyQuery(db, 'SELECT version FROM schema_version')).rows).toEqual([{ version: 2 }]);
    expect((await historyQuery(db, "SELECT count(*) AS n FROM metrics WHERE run_id = 'nightly-base'")).rows).toEqual([{ n: metricsBefore }]);
    expect((await historyQuery(db, 'SELECT count(*) AS n FROM drift')).rows).toEqual([{ n: 2 }]);
  });
});
