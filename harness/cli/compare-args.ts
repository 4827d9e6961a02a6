import type { CommandSpec } from './command.ts';

export const COMPARE_COMMAND: CommandSpec = {
  name: 'compare <a> <b>',
  describe: 'Compare two runs item by item: per-task difference, McNemar / paired bootstrap, flipped items',
  builder: (y) =>
    y
      .positional('a', { type: 'string', describe: 'Run directory A (the reference)' })
      .positional('b', { type: 'string', describe: 'Run directory B; differences are B - A' })
      .option('metric', { type: 'string', default: 'acc', describe: 'Metric to compare (a task without it uses its own first metric)' })
      .option('alpha', { type: 'number', default: 0.05, describe: 'Significance level' })
      .option('resamples', { type: 'number', default: 2000, describe: 'Bootstrap resamples for non-0/1 metrics' })
      .option('seed', { type: 'number', default: 1, describe: 'Bootstrap seed (fixed so a verdict never flaps)' })
      .option('out', { type: 'string', describe: 'Also write compare.md and compare.json to this directory' })
      .option('json', { type: 'boolean', default: false, describe: 'Print JSON (all flipped items) instead of markdown' })
      .example('$0 compare out/lora-r8 out/lora-r16', 'two adapter checkpoints on the same items'),
  load: () => import('./compare.ts'),
};
