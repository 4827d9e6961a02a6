import type { CommandSpec } from './command.ts';

export const HISTORY_ACTIONS = ['ingest', 'trend', 'flips', 'query'] as const;

export const HISTORY_COMMAND: CommandSpec = {
  name: 'history <action> [targets..]',
  describe: 'Run history in a DuckDB store: ingest run dirs, a metric over time, items that flipped, SQL',
  builder: (y) =>
    y
      .positional('action', { choices: HISTORY_ACTIONS, describe: 'ingest <run dirs..> | trend | flips <run A> <run B> | query "<SQL>"' })
      .positional('targets', { type: 'string', array: true, describe: 'Run directories (ingest), two run ids (flips), or one SQL statement (query)' })
      .option('db', { type: 'string', describe: 'Store file (default $XDG_CACHE_HOME/llama-eval/history.duckdb, else ~/.cache/llama-eval/history.duckdb)' })
      .option('task', { type: 'string', describe: 'trend: the task (required); flips: only this task' })
      .option('model', { type: 'string', describe: 'trend: the model as the runs recorded it (required)' })
      .option('peft', { type: 'string', describe: 'trend: the PEFT method; omit (or "base") for the base model' })
      .option('metric', { type: 'string', describe: "trend: the metric (default: the task's only metric, else acc); flips: only this metric" })
      .option('last', { type: 'number', describe: 'trend: only the most recent N runs' })
      .option('chart', { type: 'string', describe: 'trend: also write a Vega-Lite line chart with a ±1 stderr band to this .vl.json path' })
      .option('json', { type: 'boolean', default: false, describe: 'Print one JSON document (field names are a stable contract)' })
      .option('lock-timeout', { type: 'number', default: 60, describe: 'Seconds to wait while another process holds the store' })
      .example('$0 history ingest out/nightly-*', 'add runs (idempotent: ingesting a run again adds nothing)')
      .example('$0 history trend --task pubmedqa --model llama-3-8b --peft lora --last 30 --chart trend.vl.json', 'metric over time')
      .example('$0 history flips nightly-2026-11-20 nightly-2026-11-21', 'items whose per-sample metric changed')
      .example('$0 history query "SELECT run_id, time FROM runs ORDER BY time DESC LIMIT 5"', 'SQL on a read-only connection'),
  load: () => import('./history.ts'),
};
