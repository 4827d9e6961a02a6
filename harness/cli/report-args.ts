import type { CommandSpec } from './command.ts';

export const REPORT_COMMAND: CommandSpec = {
  name: 'report <runs..>',
  describe: 'Charts (Vega-Lite + SVG/PNG), CSV, summary.md and results.json from run directories (see docs/reports.md)',
  builder: (y) =>
    y
      .positional('runs', { type: 'string', array: true, describe: 'Run directories (each holding records.jsonl)' })
      .option('out', { type: 'string', demandOption: true, describe: 'Output directory (created if missing)' })
      .option('metric', { type: 'string', default: 'acc', describe: 'Metric to chart per task (a task without it uses its own first metric)' })
      .option('png', { type: 'boolean', default: true, describe: 'Also render each chart to PNG (--no-png to skip)' })
      .example('$0 report out/run-1 --out out/report', 'one run')
      .example('$0 report out/lora out/qlora --out out/report --metric acc_norm', 'two runs side by side'),
  load: () => import('./report.ts'),
};
