import type { CommandSpec } from './command.ts';

export const LEADERBOARD_COMMAND: CommandSpec = {
  name: 'leaderboard [runs..]',
  describe: 'Static, self-contained leaderboard site (sortable table, charts, per-run pages, results.json)',
  builder: (y) =>
    y
      .positional('runs', { type: 'string', array: true, describe: 'Run directories (each holding records.jsonl)' })
      .option('out', { type: 'string', default: 'site', describe: 'Site directory (publish it as is, e.g. to GitHub Pages)' })
      .option('metric', { type: 'string', default: 'acc', describe: 'Metric shown per task (a task without it uses its own first metric)' })
      .option('from-history', { type: 'number', describe: 'Also the N newest runs in the history store (--db) whose records still exist' })
      .option('db', { type: 'string', describe: 'History store for --from-history (default $XDG_CACHE_HOME/llama-eval/history.duckdb; docs/history.md)' })
      .example('$0 leaderboard out/*/ --out site/', 'every run under out/')
      .example('$0 leaderboard --from-history 30 --out site/', 'the last 30 runs ingested into the history store'),
  load: () => import('./leaderboard.ts'),
};
