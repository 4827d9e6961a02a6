// trend, flips and query on a store holding the fixture runs. Expected values are recomputed
// here from the fixture records.jsonl text: means and stderrs from the per-sample values (the
// lm-evaluation-harness definition: sample std with ddof=1 over sqrt(n)), flips by comparing the
// two files' samples item by item.
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trendChart } from '../../harness/history/chart.ts';
import { ingestRuns } from '../../harness/history/ingest.ts';
import { historyFlips, historyQuery, historyTrend } from '../../harness/history/queries.ts';
import { InputError } from '../../results/errors.ts';
import { FIXTURES_DIR } from '../fixtures/runs/generate.ts';

const tmp = mkdtempSync(join(tmpdir(), 'history-queries-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const db = join(tmp, 'history.duckdb');
const fixture = (name: string) => join(FIXTURES_DIR, name);

interface RawSample { kind: 'sample'; run_id: string; cell_id: string; task: string; doc_id: number | string; metrics: Record<string, number> }
const samplesOf = (name: string): RawSample[] =>
  readFileSync(join(fixture(name), 'records.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"kind":"sample"')).map((l) => JSON.parse(l) as RawSample);
const manifestTime = (name: string) => (JSON.parse(readFileSync(join(fixture(name), 'records.jsonl'), 'utf8').split('\n')[0]!) as { time: string }).time;

function meanStderr(xs: number[]): { mean: number; stderr: number } {
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  const ss = xs.reduce((s, x) => s + (x - mean) ** 2, 0);
  return { mean, stderr: Math.sqrt(ss / (xs.length - 1) / xs.length) };
}

beforeAll(async () => {
  // Ingested out of time order on purpose: trend must sort by run time, not by ingest order.
  await ingestRuns(db, [fixture('nightly-drop'), fixture('sweep'), fixture('nightly-base')]);
}, 30_000);

describe('history trend', () => {
  const cell = 'tiny-llama-3.1/lora/medqa';

  it('gives one point per run in time order, each the mean ± stderr of its samples', async () => {
    const t = await historyTrend(db, { task: 'medqa', model: 'tiny-llama-3.1', peft: 'lora' });
    const order = ['nightly-base', 'sweep', 'nightly-drop']; // manifest times 11-20 02:00, 11-20 03:00, 11-21 02:00
    expect(t.metric).toBe('acc');
    expect(t.points.map((p) => p.run_id)).toEqual(order);
    expect(t.points.map((p) => p.time)).toEqual(order.map(manifestTime));
    order.forEach((run, i) => {
      const values = samplesOf(run).filter((s) => s.cell_id === cell).map((s) => s.metrics.acc!);
      const { mean, stderr } = meanStderr(values);
      expect(t.points[i]?.n).toBe(values.length);
      expect(t.points[i]?.value).toBeCloseTo(mean, 12);
      expect(t.points[i]?.stderr).toBeCloseTo(stderr, 12);
    });
    // generate.ts: nightly-drop loses 12 and gains 2 medqa items out of 200 => exactly -0.05.
    expect(t.points[2]!.value - t.points[0]!.value).toBeCloseTo(-0.05, 12);
  });

  it('--last keeps the most recent runs, still oldest first', async () => {
    const t = await historyTrend(db, { task: 'medqa', model: 'tiny-llama-3.1', peft: 'lora', last: 2 });
    expect(t.points.map((p) => p.run_id)).toEqual(['sweep', 'nightly-drop']);
  });

  it('no --peft means the base model', async () => {
    const t = await historyTrend(db, { task: 'piqa', model: 'tiny-llama-2', peft: null });
    expect(t.points.map((p) => p.run_id)).toEqual(['sweep']);
    const values = samplesOf('sweep').filter((s) => s.cell_id === 'tiny-llama-2/base/piqa').map((s) => s.metrics.acc!);
    expect(t.points[0]?.value).toBeCloseTo(meanStderr(values).mean, 12);
  });

  it('an unknown config is an InputError listing the configs that have the task', async () => {
    const q = historyTrend(db, { task: 'medqa', model: 'tiny-llama-3.1', peft: 'dora' });
    await expect(q).rejects.toThrow(InputError);
    await expect(historyTrend(db, { task: 'medqa', model: 'tiny-llama-3.1', peft: 'dora' })).rejects.toThrow(
      /no medqa scores for tiny-llama-3.1\/dora; configs with medqa scores: tiny-llama-2\/base, tiny-llama-2\/lora, tiny-llama-3.1\/llama-adapter-v1, tiny-llama-3.1\/lora, tiny-llama-3.1\/qlora/);
    await expect(historyTrend(db, { task: 'medqa', model: 'tiny-llama-3.1', peft: 'lora', metric: 'f1' })).rejects.toThrow('--metric f1: medqa for tiny-llama-3.1/lora has metrics acc');
    await expect(historyTrend(db, { task: 'medqa', model: 'tiny-llama-3.1', peft: 'lora', last: 0 })).rejects.toThrow('--last must be a positive integer');
  });
});

describe('history trend chart', () => {
  let validate: ReturnType<Ajv['compile']>;
  beforeAll(() => {
    // Same schema check as test/unit/reports-charts.test.ts: the schema vega-lite ships in build/.
    const entry = createRequire(import.meta.url).resolve('vega-lite');
    const root = entry.slice(0, entry.lastIndexOf(`${sep}node_modules${sep}vega-lite${sep}`) + `${sep}node_modules${sep}vega-lite${sep}`.length);
    const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false, logger: false });
    validate = ajv.compile(JSON.parse(readFileSync(join(root, 'build', 'vega-lite-schema.json'), 'utf8')));
  });

  it('is valid Vega-Lite: a line over time with a ±1 stderr band from the points', async () => {
    const t = await historyTrend(db, { task: 'medqa', model: 'tiny-llama-3.1', peft: 'lora' });
    const spec = trendChart(t);
    expect(validate(spec) ? [] : validate.errors?.slice(0, 3)).toEqual([]);
    expect(validate({ ...spec, layer: [{ mark: 'lline' }] })).toBe(false); // the check is not vacuous
    const values = (spec.data as { values: { value: number; lo: number; hi: number }[] }).values;
    expect(values).toHaveLength(3);
    values.forEach((v, i) => {
      expect(v.lo).toBeCloseTo(t.points[i]!.value - t.points[i]!.stderr!, 12);
      expect(v.hi).toBeCloseTo(t.points[i]!.value + t.points[i]!.stderr!, 12);
    });
    const marks = (spec as { layer: { mark: { type: string } }[] }).layer.map((l) => l.mark.type);
    expect(marks).toEqual(['errorband', 'line']);
  });
});

describe('history flips', () => {
  it('lists exactly the items whose per-sample metric changed', async () => {
    const a = new Map(samplesOf('nightly-base').map((s) => [`${s.task}#${s.doc_id}`, s.metrics]));
    const expected: string[] = [];
    for (const s of samplesOf('nightly-drop')) {
      const before = a.get(`${s.task}#${s.doc_id}`)!;
      for (const [m, v] of Object.entries(s.metrics)) if (before[m] !== v) expected.push(`${s.task}#${s.doc_id}#${m}#${before[m]}->${v}`);
    }
    const r = await historyFlips(db, 'nightly-base', 'nightly-drop');
    expect(r.flips.map((f) => `${f.task}#${f.doc_id}#${f.metric}#${f.a}->${f.b}`).sort()).toEqual(expected.sort());
    // generate.ts: medqa flips 12 right->wrong and 2 wrong->right; piqa 3 each way.
    expect(r.flips.filter((f) => f.task === 'medqa')).toHaveLength(14);
    expect(r.flips.filter((f) => f.task === 'medqa' && f.a === 1 && f.b === 0)).toHaveLength(12);
    expect(r.flips.filter((f) => f.task === 'piqa')).toHaveLength(6);
    expect(r.compared).toBe(samplesOf('nightly-base').length);
  });

  it('--task narrows to one task', async () => {
    const r = await historyFlips(db, 'nightly-base', 'nightly-drop', { task: 'piqa' });
    expect(new Set(r.flips.map((f) => f.task))).toEqual(new Set(['piqa']));
    expect(r.compared).toBe(samplesOf('nightly-base').filter((s) => s.task === 'piqa').length);
  });

  it('pairs items of the same config across a multi-config run', async () => {
    const r = await historyFlips(db, 'nightly-base', 'sweep', { task: 'medqa' });
    // sweep has 40 medqa items per config; only tiny-llama-3.1/lora pairs with nightly-base.
    expect(r.compared).toBe(40);
    const base = new Map(samplesOf('nightly-base').filter((s) => s.task === 'medqa').map((s) => [s.doc_id, s.metrics.acc]));
    const changed = samplesOf('sweep').filter((s) => s.cell_id === 'tiny-llama-3.1/lora/medqa' && base.get(s.doc_id) !== s.metrics.acc);
    expect(r.flips.map((f) => f.doc_id)).toEqual(changed.map((s) => String(s.doc_id)));
  });

  it('an unknown run id is an InputError listing known runs', async () => {
    await expect(historyFlips(db, 'nightly-base', 'nightly-x')).rejects.toThrow(/run "nightly-x" is not in history store .*; most recent runs: nightly-drop, sweep, nightly-base/); // newest first by manifest time
  });
});

describe('history query', () => {
  it('answers SQL over the tables', async () => {
    const r = await historyQuery(db, "SELECT run_id, count(*) AS n FROM samples WHERE task = 'cuad' GROUP BY run_id ORDER BY run_id");
    expect(r.columns).toEqual(['run_id', 'n']);
    const cuad = (name: string) => samplesOf(name).filter((s) => s.task === 'cuad').length;
    expect(r.rows).toEqual([{ run_id: 'nightly-base', n: cuad('nightly-base') }, { run_id: 'nightly-drop', n: cuad('nightly-drop') }]);
  });

  it('per-sample metrics are a MAP readable by name', async () => {
    const r = await historyQuery(db, "SELECT sum(metrics['acc']) AS right FROM samples WHERE run_id = 'nightly-base' AND task = 'medqa'");
    expect(r.rows[0]?.right).toBe(samplesOf('nightly-base').filter((s) => s.task === 'medqa').reduce((n, s) => n + s.metrics.acc!, 0));
  });

  it('refuses writes and file access: the connection is read-only', async () => {
    for (const sql of ['DELETE FROM runs', "INSERT INTO schema_version VALUES (9, 'x')", 'DROP TABLE samples', `COPY runs TO '${join(tmp, 'out.csv')}'`]) {
      await expect(historyQuery(db, sql)).rejects.toThrow(/history query runs on a read-only connection, so this statement is refused/);
    }
    expect((await historyQuery(db, 'SELECT count(*) AS n FROM runs')).rows).toEqual([{ n: 3 }]);
  });

  it('a SQL error is an InputError carrying DuckDB\'s message', async () => {
    await expect(historyQuery(db, 'SELEC 1')).rejects.toThrow(/history query: Parser Error: syntax error at or near "SELEC"/);
    await expect(historyQuery(db, 'SELECT * FROM nope')).rejects.toThrow(InputError);
    await expect(historyQuery(db, '  ')).rejects.toThrow(InputError);
  });
});
