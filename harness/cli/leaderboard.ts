// `llama-eval leaderboard`: run dirs -> a static site that works offline and on GitHub Pages.
import { resolve } from 'node:path';
import { writeLeaderboard } from '../../reports/leaderboard/build.ts';
import { InputError } from '../errors.ts';
import type { CliIO } from './command.ts';
import { asInputErrors } from './report-input.ts';

export async function run(args: Record<string, unknown>, io: CliIO): Promise<number> {
  const out = String(args.out);
  const runs = Array.isArray(args.runs) ? args.runs.map(String) : [];
  if (args['from-history'] !== undefined) {
    // Imported here: the store loads DuckDB's native binding, which a plain leaderboard never needs.
    const { recentRuns } = await import('../history/select.ts');
    const { defaultHistoryPath } = await import('../history/store.ts');
    const picked = await recentRuns(typeof args.db === 'string' ? args.db : defaultHistoryPath(), Number(args['from-history']));
    for (const m of picked.missing) io.err(`llama-eval: skipped history run ${m}: its records are gone\n`);
    // A run named both on the command line and from the store appears once.
    const named = new Set(runs.map((r) => resolve(r)));
    for (const r of picked.runs.reverse()) if (!named.has(resolve(r.source)) && !named.has(resolve(r.source, '..'))) runs.push(r.source);
  }
  if (runs.length === 0) throw new InputError('leaderboard: name run directories, or --from-history N to take the newest runs from the history store');
  const result = await asInputErrors(() => writeLeaderboard(runs, out, { metric: String(args.metric) }));
  const configs = result.summaries.reduce((n, s) => n + s.configs.length, 0);
  io.out(`wrote ${out}/index.html: ${result.summaries.length} runs, ${configs} configs, ${result.files.length} files\n`);
  return 0;
}
