// Opening what a user names on the command line as a RunView: a run dir (records + samples) or,
// for a regress baseline, a results.json file (scores with stderr only).
import { readFileSync, statSync, existsSync } from 'node:fs';
import { formatIssues } from '../results/schema.ts';
import { ReportInputError } from './errors.ts';
import type { RunView } from './pairing.ts';
import { loadRun } from './run.ts';
import { summarizeRun } from './summary.ts';
import { RunSummarySchema } from './summary-types.ts';

function readResultsJson(path: string): RunView {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ReportInputError(`cannot read results file ${path}: ${(e as Error).message}`);
  }
  const parsed = RunSummarySchema.safeParse(json);
  if (!parsed.success) {
    throw new ReportInputError(`${path} is not a llama-eval results.json (written by \`llama-eval report\`): ${formatIssues(parsed.error)}`);
  }
  return { source: path, summary: parsed.data, records: null };
}

/** A run dir, a records.jsonl, or (when `allowSummary`) a results.json file. */
export function openRunView(source: string, allowSummary = false): RunView {
  if (allowSummary && existsSync(source) && statSync(source).isFile() && source.endsWith('.json')) return readResultsJson(source);
  const run = loadRun(source);
  return { source, summary: summarizeRun(run.records, run.problems), records: run.records };
}
