// `llama-eval leaderboard`: run dirs -> a static site that works offline and on GitHub Pages.
import { writeLeaderboard } from '../../reports/leaderboard/build.ts';
import type { CliIO } from './command.ts';
import { asInputErrors } from './report-input.ts';

export async function run(args: Record<string, unknown>, io: CliIO): Promise<number> {
  const out = String(args.out);
  const result = await asInputErrors(() => writeLeaderboard((args.runs as string[]).map(String), out, { metric: String(args.metric) }));
  const configs = result.summaries.reduce((n, s) => n + s.configs.length, 0);
  io.out(`wrote ${out}/index.html: ${result.summaries.length} runs, ${configs} configs, ${result.files.length} files\n`);
  return 0;
}
