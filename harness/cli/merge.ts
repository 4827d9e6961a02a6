// `llama-eval merge`: shard out dirs -> one run (harness/run/merge.ts), then the run's table or JSON.
// Exit code 1, as `run` gives, when a cell of some shard failed: the merged results are incomplete.
import { mergeShards } from '../run/merge.ts';
import type { CliIO } from './command.ts';
import { printJson } from './output.ts';
import { printRunSummary } from './run-output.ts';

export async function run(args: Record<string, unknown>, io: CliIO): Promise<number> {
  const dirs = (Array.isArray(args.shards) ? args.shards : [args.shards]).filter((d) => d !== undefined).map(String);
  const outDir = String(args.out);
  const { summary, shards } = mergeShards(dirs, outDir);
  if (args.json) {
    printJson(io, summary);
  } else {
    printRunSummary(io, summary);
    io.out(`merged ${shards} shards: ${outDir}/records.jsonl  summary: ${outDir}/results.json\n`);
  }
  return summary.errors.length > 0 ? 1 : 0;
}
