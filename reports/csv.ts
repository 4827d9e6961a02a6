// results.csv (one row per run x config x task x metric, failed tasks included as rows with
// status "failed" and an empty value) and samples.csv (one row per scored item).
import { stringify } from 'csv-stringify/sync';
import type { RunRecord } from '../results/schema.ts';
import { cellIdentities } from './cells.ts';
import { tasksOf } from './metric-choice.ts';
import type { RunSummary } from './summary-types.ts';

export function resultsCsv(runs: readonly RunSummary[]): string {
  const rows: (string | number | null)[][] = [];
  for (const run of runs) {
    for (const c of run.configs) {
      for (const task of tasksOf([...c.scores, ...c.failures])) {
        const failure = c.failures.find((f) => f.task === task) ?? c.failures.find((f) => f.task === null);
        const scores = c.scores.filter((s) => s.task === task);
        const base = [run.run_id, c.model, c.version, c.peft ?? 'base', task];
        // An empty value, never 0, for a failed task: a spreadsheet average must not count it.
        if (failure) rows.push([...base, scores[0]?.metric ?? '', '', '', '', 'failed', failure.message]);
        else for (const s of scores) rows.push([...base, s.metric, s.value, s.stderr, s.n, 'ok', '']);
      }
    }
  }
  return stringify(rows, {
    header: true,
    columns: ['run_id', 'model', 'version', 'peft', 'task', 'metric', 'value', 'stderr', 'n', 'status', 'error'],
  });
}

const json = (v: unknown) => (v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v));

export function samplesCsv(records: readonly RunRecord[]): string {
  const cells = cellIdentities(records);
  const samples = records.filter((r) => r.kind === 'sample');
  const metricNames = [...new Set(samples.flatMap((s) => Object.keys(s.metrics)))].sort();
  const rows = samples.map((s) => {
    const id = cells.get(s.cell_id);
    return [
      s.run_id, s.cell_id, id?.model ?? '', id?.peft ?? 'base', s.task, String(s.doc_id), s.prompt_hash,
      ...metricNames.map((m) => s.metrics[m] ?? ''), json(s.target), json(s.response),
    ];
  });
  return stringify(rows, {
    header: true,
    columns: ['run_id', 'cell_id', 'model', 'peft', 'task', 'doc_id', 'prompt_hash', ...metricNames, 'target', 'response'],
  });
}
