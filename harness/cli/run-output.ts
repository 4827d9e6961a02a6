// The human form of a run summary, shared by `run` and `merge`: the task x metric table, then the
// skipped tasks with their reasons and the failed cells with their messages.
import { summaryTable, type RunSummary } from '../run/summary.ts';
import type { CliIO } from './command.ts';
import { printTable } from './output.ts';

export function printRunSummary(io: CliIO, summary: RunSummary): void {
  const { head, rows } = summaryTable(summary);
  if (rows.length > 0) printTable(io, head, rows);
  for (const s of summary.skipped) io.out(`skipped ${s.task} (${s.model} / ${s.peft ?? 'base'}): ${s.reason}\n`);
  for (const e of summary.errors) io.out(`FAILED ${e.task} (${e.model} / ${e.peft ?? 'base'}): ${e.message}\n`);
}
