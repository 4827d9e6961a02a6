import type { CommandSpec } from './command.ts';

export const MERGE_COMMAND: CommandSpec = {
  name: 'merge <shards..>',
  describe: 'Join the out dirs of `run --shard i/N` into one run (records.jsonl, results.json) with the results an unsharded run gives',
  builder: (y) =>
    y
      .positional('shards', { type: 'string', array: true, demandOption: true, describe: 'The --out directory of every shard (all N of one plan, any order)' })
      .option('out', { alias: 'output', type: 'string', demandOption: true, describe: 'Directory for the merged run (must not hold a run yet)' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the summary as JSON (the results.json document)' })
      .example('$0 merge runs/med-0 runs/med-1 runs/med-2 runs/med-3 --out runs/med', 'after four `run --shard i/4` jobs')
      .example('$0 merge runs/med-* --out runs/med --json', 'the merged summary as JSON')
      .epilogue('Exit codes: 0 every cell ok or skipped, 1 a cell failed in some shard (see its error record), 2 shards that do not form one plan or bad input.'),
  load: () => import('./merge.ts'),
};
