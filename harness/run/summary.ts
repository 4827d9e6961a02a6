// records -> the run's summary (results.json, the printed table, --json). Built only from the
// records file and the plan, never from in-memory results, so an interrupted-and-resumed run and
// an uninterrupted one summarise identically.
import type { RunRecord } from '../../results/schema.ts';
import type { Plan } from './plan.ts';

export interface SummaryRow {
  task: string;
  metric: string;
  model: string;
  peft: string | null;
  value: number;
  stderr: number | null;
  n: number;
  cell_id: string;
}

export interface SkipEntry {
  model: string;
  peft: string | null;
  task: string;
  reason: string;
}

export interface ErrorEntry {
  cell_id: string;
  model: string;
  peft: string | null;
  task: string;
  message: string;
}

export interface RunSummary {
  run_id: string;
  out: string;
  rows: SummaryRow[];
  skipped: SkipEntry[];
  errors: ErrorEntry[];
  /** Lines of records.jsonl that could not be read (torn or invalid), with file:line. */
  problems: string[];
}

export interface SummarizeInput {
  runId: string;
  outDir: string;
  plan: Plan;
  records: readonly RunRecord[];
  skipped: readonly SkipEntry[];
  problems: readonly string[];
}

export function summarize(input: SummarizeInput): RunSummary {
  // Last metric record per (cell, metric) wins: a cell re-run after a partial write rewrites them.
  const metrics = new Map<string, Map<string, SummaryRow>>();
  const lastError = new Map<string, string>();
  for (const r of input.records) {
    if (r.kind === 'metric') {
      const byMetric = metrics.get(r.cell_id) ?? new Map<string, SummaryRow>();
      byMetric.set(r.metric, { task: r.task, metric: r.metric, model: r.model, peft: r.peft, value: r.value, stderr: r.stderr, n: r.n, cell_id: r.cell_id });
      metrics.set(r.cell_id, byMetric);
    } else if (r.kind === 'error') {
      lastError.set(r.cell_id, r.message);
    }
  }
  const rows: SummaryRow[] = [];
  const errors: ErrorEntry[] = [];
  const skippedTasks = new Set(input.skipped.map((s) => `${s.model}\u0000${s.peft}\u0000${s.task}`));
  for (const cell of input.plan.cells) {
    const peft = cell.peft?.label ?? null;
    const found = metrics.get(cell.id);
    if (found) rows.push(...found.values());
    else if (lastError.has(cell.id)) errors.push({ cell_id: cell.id, model: cell.model, peft, task: cell.task, message: lastError.get(cell.id)! });
    else if (!skippedTasks.has(`${cell.model}\u0000${peft}\u0000${cell.task}`)) {
      errors.push({ cell_id: cell.id, model: cell.model, peft, task: cell.task, message: 'no records: the cell did not finish' });
    }
  }
  return { run_id: input.runId, out: input.outDir, rows, skipped: [...input.skipped], errors, problems: [...input.problems] };
}

const configName = (model: string, peft: string | null): string => `${model} / ${peft ?? 'base'}`;

/** task x metric rows, one column per model/peft: "value ± stderr (n)". */
export function summaryTable(summary: RunSummary): { head: string[]; rows: string[][] } {
  const configs = [...new Set(summary.rows.map((r) => configName(r.model, r.peft)))];
  const lines = new Map<string, Map<string, string>>();
  for (const r of summary.rows) {
    const key = `${r.task}\u0000${r.metric}`;
    const line = lines.get(key) ?? new Map<string, string>();
    line.set(configName(r.model, r.peft), `${r.value.toFixed(4)} ± ${r.stderr === null ? '-' : r.stderr.toFixed(4)} (n=${r.n})`);
    lines.set(key, line);
  }
  const rows = [...lines].map(([key, line]) => [...key.split('\u0000'), ...configs.map((c) => line.get(c) ?? '-')]);
  return { head: ['task', 'metric', ...configs], rows };
}
