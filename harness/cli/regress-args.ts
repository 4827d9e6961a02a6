import type { CommandSpec } from './command.ts';

export const REGRESS_COMMAND: CommandSpec = {
  name: 'regress',
  describe: 'Nightly gate: exit 1 when a task drops by more than --max-drop and the drop is significant at --alpha',
  builder: (y) =>
    y
      .option('baseline', {
        type: 'string', demandOption: true,
        describe: 'Baseline run directory, a results.json from `llama-eval report`, or last-green: the newest earlier run in the history store (--db) with no failed cell, on the same data',
      })
      .option('current', { type: 'string', demandOption: true, describe: 'Current run directory' })
      .option('max-drop', { type: 'number', default: 0.01, describe: 'Largest tolerated drop, in metric units (0.01 = 1 point of accuracy)' })
      .option('alpha', { type: 'number', default: 0.05, describe: 'Significance level of the paired test' })
      .option('metric', { type: 'string', default: 'acc', describe: 'Metric to gate on (a task without it uses its own first metric)' })
      .option('out', { type: 'string', default: 'out/regress', describe: 'Directory for regress.md, junit.xml and regress.json' })
      .option('junit', { type: 'string', describe: 'JUnit XML path (default: <out>/junit.xml)' })
      .option('db', { type: 'string', describe: 'History store for --baseline last-green (default $XDG_CACHE_HOME/llama-eval/history.duckdb; docs/history.md)' })
      .example('$0 regress --baseline baseline/ --current out/nightly --max-drop 0.01 --alpha 0.05', 'the nightly CI gate')
      .example('$0 regress --baseline site/results.json --current out/nightly', 'baseline from a published summary (unpaired z-test)')
      .example('$0 regress --baseline last-green --current out/nightly', 'baseline from the run history store'),
  load: () => import('./regress.ts'),
};
