// Shared by bench:runner and bench:peers: argument parsing, the multiple-choice questions, the
// machine line, and number formatting. Every figure the benches print is measured in the same run.
import { availableParallelism, loadavg } from 'node:os';
import { measureLimits, type LimitsDetail } from '../../kernels/machine.ts';
import { FULL_TIMING, QUICK_TIMING } from '../../kernels/measure.ts';
import yargs from 'yargs';
import { z } from 'zod';
import { InputError } from '../../results/errors.ts';
import { resolveTasks } from '../../suites/registry.ts';
import { multipleChoiceRequests } from '../../suites/multiple-choice.ts';
import type { LoglikelihoodRequest } from '../../runners/types.ts';
import type { CliIO } from '../cli/command.ts';

export const BenchArgsSchema = z.strictObject({
  quick: z.boolean(),
  threads: z.number().int().min(1),
  model: z.string().min(1),
  json: z.boolean(),
});
export type BenchArgs = z.infer<typeof BenchArgsSchema>;

/**
 * The options every bench script takes (`--quick --threads N --model ID --json`), strict, with usage
 * errors as InputErrors (exit 2); a script adds its own options to what this returns.
 */
export function benchYargs(argv: readonly string[], script: string, describe: { quick: string; threads: string }) {
  return yargs([...argv])
    .scriptName(script)
    .option('quick', { type: 'boolean', default: false, describe: describe.quick })
    .option('threads', { type: 'number', default: availableParallelism(), describe: describe.threads })
    .option('model', { type: 'string', default: 'llama-3.2-1b', describe: 'zoo id whose shape the random-weight model takes' })
    .option('json', { type: 'boolean', default: false, describe: 'print one JSON document instead of tables' })
    .strict()
    .fail((message: string) => {
      throw new InputError(`${script}: ${message} (run with --help for the options)`);
    })
    .help(false)
    .version(false);
}

/** The parsed options checked by `schema`; the first failing field is an InputError naming it. */
export function checkBenchArgs<T>(schema: z.ZodType<T>, values: unknown, script: string, example: string): T {
  const parsed = schema.safeParse(values);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new InputError(`${script}: --${issue.path.join('.')}: ${issue.message} (expected e.g. ${example})`);
  }
  return parsed.data;
}

/** Parses `--quick --threads N --model ID --json`; bad values are InputErrors (exit 2). */
export function parseBenchArgs(argv: readonly string[], script: string): BenchArgs {
  const raw = benchYargs(argv, script, {
    quick: 'a cut-down run (under a minute on 2 cores)',
    threads: 'threads for every backend (ORT intra-op, llama.cpp)',
  }).parseSync();
  return checkBenchArgs(BenchArgsSchema, { quick: raw.quick, threads: raw.threads, model: raw.model, json: raw.json }, script, '--threads 2');
}

/**
 * The 4-choice tasks the sharing comparison runs on, at the two ends of what sharing can save:
 * HellaSwag's endings are as long as its contexts (bundled sample: 15-40 context tokens, 6-24 per
 * ending), so even free sharing saves under half; MMLU's answers are one letter after a 50-90 token
 * question, so sharing saves 3 of 4 prefills.
 */
export const SHARING_TASKS = ['hellaswag', 'mmlu_anatomy'] as const;

/** The loglikelihood requests of the first `n` items of `taskName`'s bundled sample, one array per item. */
export async function taskQuestions(taskName: string, n: number): Promise<LoglikelihoodRequest[][]> {
  const [task] = resolveTasks([taskName]);
  const loaded = await task!.load({ offline: true, limit: n });
  if (loaded.status !== 'loaded') throw new Error(`${taskName} sample not available: ${loaded.reason}`);
  if (!task!.multipleChoice) throw new Error(`${taskName} is not a multiple-choice task`);
  return loaded.docs.map((doc) => multipleChoiceRequests(task!.multipleChoice!(doc)));
}

/** The conditions of the run, printed above every table: a shared machine's load changes figures. */
export function machineLine(threads: number): string {
  return `machine: ${availableParallelism()} CPUs, ${threads} threads per backend, load average ${loadAverage()} (1/5/15 min) at start`;
}

export function loadAverage(): string {
  return loadavg().map((x) => x.toFixed(2)).join(' ');
}

/**
 * The machine's limits (kernels/machine.ts: bandwidth = best of STREAM-like triads and ORT's fp32
 * GEMV weight stream). Called before and after the timed work and merged by `bestLimits`, as the
 * kernel benches do: on a shared machine a neighbour can halve one sample, and the limit is the best
 * the machine showed, not an unlucky sample.
 */
export async function machineLimits(quick: boolean): Promise<LimitsDetail> {
  return measureLimits({ device: 'cpu', timing: quick ? QUICK_TIMING : FULL_TIMING, triadFloats: 1 << 24, gemmSize: 1024, streamShape: [8192, 8192] });
}

export function bestLimits(a: LimitsDetail, b: LimitsDetail): LimitsDetail {
  return {
    ...a,
    bandwidthGBs: Math.max(a.bandwidthGBs, b.bandwidthGBs),
    peakGflops: Math.max(a.peakGflops, b.peakGflops),
    triadJsGBs: Math.max(a.triadJsGBs, b.triadJsGBs),
    triadOrtGBs: Math.max(a.triadOrtGBs, b.triadOrtGBs),
    gemvReadGBs: Math.max(a.gemvReadGBs, b.gemvReadGBs),
  };
}

export function limitsLine(before: LimitsDetail, after: LimitsDetail): string {
  const l = bestLimits(before, after);
  return `bandwidth ${l.bandwidthGBs.toFixed(1)} GB/s (best of triad js ${l.triadJsGBs.toFixed(1)}, triad ort ${l.triadOrtGBs.toFixed(1)}, fp32 gemv stream ${l.gemvReadGBs.toFixed(1)}; before/after the run ${before.bandwidthGBs.toFixed(1)}/${after.bandwidthGBs.toFixed(1)}); fp32 GEMM ${l.peakGflops.toFixed(1)} GFLOP/s`;
}

export const fmt = {
  rate: (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2)),
  ratio: (x: number) => `${x.toFixed(2)}x`,
  gib: (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GiB`,
  mib: (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`,
  seconds: (s: number) => `${s.toFixed(2)} s`,
};

export const consoleIO: CliIO = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };

/** Runs a bench's main as a script: InputError -> exit 2 with its one line, anything else -> 3. */
export async function runScript(main: (argv: readonly string[], io: CliIO) => Promise<number>): Promise<void> {
  try {
    process.exitCode = await main(process.argv.slice(2), consoleIO);
  } catch (error) {
    process.stderr.write(`${error instanceof InputError ? '' : 'internal error: '}${(error as Error).message}\n`);
    process.exitCode = error instanceof InputError ? 2 : 3;
  }
}
