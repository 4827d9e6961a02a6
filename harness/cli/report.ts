// `llama-eval report`: run dirs -> charts, CSV, summary.md, results.json.
import { writeReport } from '../../reports/report.ts';
import type { CliIO } from './command.ts';
import { asInputErrors } from './report-input.ts';

export async function run(args: Record<string, unknown>, io: CliIO): Promise<number> {
  const runs = (args.runs as string[]).map(String);
  const out = String(args.out);
  const result = await asInputErrors(() => writeReport(runs, out, { metric: String(args.metric), png: args.png !== false }));
  for (const s of result.summaries) {
    const failed = s.configs.reduce((n, c) => n + c.failures.length, 0);
    io.out(`${s.run_id}: ${s.configs.length} configs, ${failed} failed cells${s.problems.length > 0 ? `, ${s.problems.length} skipped record lines` : ''}\n`);
  }
  io.out(`wrote ${result.files.length} files to ${out}: ${result.files.join(', ')}\n`);
  return 0;
}
