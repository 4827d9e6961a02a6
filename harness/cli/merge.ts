// `llama-eval merge`: shard out dirs -> one run (harness/run/merge.ts), then the run's table or JSON.
// Exit code 1, as `run` gives, when a cell of some shard failed: the merged results are incomplete.
import { mergeShards } from '../run/merge.ts';
import { summaryTable } from '../run/summary.ts';
import type { CliIO } from './command.ts';
import { printJson, printTable } from './output.ts';

export async function run(args: Record<string, unknown>, io: CliIO): Promise<number> {
  const dirs = (Array.isArray(args.shards) ? args.shards : [args.shards]).filter((d) => d !== undefined).map(String);
  const outDir = String(args.out);
  const { summary, shards } = mergeShards(dirs, outDir);
  if (args.json) {
    printJson(io, summary);
  } else {
    const { head, rows } = summaryTable(summary);
    if (rows.length > 0) printTable(io, head, rows);
    for (const s of summary.skipped) io.out(`skipped ${s.task} (${s.model} / ${s.peft ?? 'base'}): ${s.reason}\n`);
    for (const e of summary.errors) io.out(`FAILED ${e.task} (${e.model} / ${e.peft ?? 'base'}): ${e.message}\n`);
    io.out(`merged ${shards} shards: ${outDir}/records.jsonl  summary: ${outDir}/results.json\n`);
  }
  return summary.errors.length > 0 ? 1 : 0;
}
