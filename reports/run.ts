// A run on disk: `<dir>/records.jsonl` (the truth) and optionally `<dir>/results.json` (a summary
// written at the end of a run). Reports read runs through here so every command names the same
// paths in its errors.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readRecords } from '../results/store.ts';
import type { RunRecord } from '../results/schema.ts';
import { ReportInputError } from './errors.ts';

export interface LoadedRun {
  /** The directory as the user named it, for messages. */
  dir: string;
  recordsPath: string;
  records: RunRecord[];
  /** Lines readRecords skipped (`path:line: why`); reports list them instead of failing. */
  problems: string[];
}

/** Reads `<dir>/records.jsonl`; throws ReportInputError naming the exact path when it is missing. */
export function loadRun(dir: string): LoadedRun {
  if (!existsSync(dir)) throw new ReportInputError(`run directory not found: ${dir}`);
  const recordsPath = statSync(dir).isDirectory() ? join(dir, 'records.jsonl') : dir;
  if (!existsSync(recordsPath)) {
    throw new ReportInputError(
      `no records in run ${dir}: expected ${recordsPath} (a run directory holds the records.jsonl that \`llama-eval run\` writes)`,
    );
  }
  const read = readRecords(recordsPath);
  if (read.records.length === 0) {
    const why = read.problems.length > 0 ? `; first problem: ${read.problems[0]?.message}` : '';
    throw new ReportInputError(`no valid records in ${recordsPath}${why}`);
  }
  return { dir, recordsPath, records: read.records, problems: read.problems.map((p) => p.message) };
}
