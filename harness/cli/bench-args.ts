import type { CommandSpec } from './command.ts';

export const BENCH_TARGETS = ['kernels'] as const;
export const BENCH_KERNELS = ['nf4-matmul', 'moe-dispatch', 'long-attention'] as const;
export const BENCH_DEVICES = ['auto', 'cpu', 'cuda'] as const;

export const BENCH_COMMAND: CommandSpec = {
  name: 'bench <target>',
  describe: 'Kernel micro-benchmarks as roofline fractions of limits measured in the same run (see docs/kernels.md)',
  builder: (y) =>
    y
      .positional('target', { choices: BENCH_TARGETS, describe: 'What to benchmark' })
      .option('kernel', { choices: BENCH_KERNELS, array: true, describe: 'Only these kernels (default: all)' })
      .option('device', { choices: BENCH_DEVICES, default: 'auto' as const, describe: 'ORT execution provider; auto = cuda when its provider is installed, else cpu' })
      .option('quick', { type: 'boolean', default: false, describe: 'Reduced grid (< 45 s on 2 cores), keeping the M = 1 decode rows' })
      .option('max-memory', { type: 'string', default: '8GiB', describe: 'Peak-memory budget; a growing series stops before passing it (e.g. 512MiB, 16GiB)' })
      .option('output', { type: 'string', describe: 'Append `kernel` records to this records.jsonl' })
      .option('run-id', { type: 'string', describe: 'run_id for the records (default: bench-<timestamp>)' })
      .option('json', { type: 'boolean', default: false, describe: 'Print a JSON array of rows (field names are a stable contract)' })
      .example('$0 bench kernels --quick', 'the reduced grid, human table')
      .example('$0 bench kernels --kernel nf4-matmul --json', 'NF4 matmul rows as JSON')
      .example('$0 bench kernels --kernel long-attention --max-memory 16GiB --output out/records.jsonl', 'attention series, written as records'),
  load: () => import('./bench.ts'),
};
