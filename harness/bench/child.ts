// One benchmark job in a process of its own: load one model in one backend, read the process's peak
// RSS right after the load (what a process that only loads the model peaks at), then time generation
// and, if asked, multiple-choice scoring. A child per model keeps peaks from mixing (the parent's
// heap, a previous model's freed pages) and lets a crash or OOM cost one row, not the run.
//
// Run as `node --import tsx harness/bench/child.ts '<job json>'`; the result is the last stdout line,
// prefixed with RESULT_PREFIX.
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';
import { InputError } from '../../results/errors.ts';
import type { Runner } from '../../runners/types.ts';
import { runBenchChild } from './spawn.ts';
import { compareSharing, measureGeneration, type GenerationRates, type SharingComparison } from './measure.ts';

export const RESULT_PREFIX = 'LLAMA_EVAL_BENCH_RESULT ';

export const childJobSchema = z.strictObject({
  backend: z.enum(['ort', 'llamacpp']),
  /** A checkpoint directory or anything openCheckpoint accepts. */
  model: z.string().min(1),
  /** GGUF tensor type for llama.cpp (the checkpoint is exported to it once, then cached). */
  dtype: z.enum(['f32', 'f16']).default('f32'),
  threads: z.number().int().min(1),
  promptWords: z.number().int().min(1),
  newTokens: z.number().int().min(2),
  reps: z.number().int().min(1),
  /** Per task, multiple-choice questions (the requests of one item each) to compare sharing on. */
  sharing: z.array(z.strictObject({
    task: z.string(),
    questions: z.array(z.array(z.strictObject({ context: z.string(), continuation: z.string() }))).min(1),
  })).default([]),
  /** Rounds of the sharing comparison, the fastest of each way kept. */
  rounds: z.number().int().min(1).default(1),
});
export type ChildJob = z.input<typeof childJobSchema>;

export interface ChildResult {
  backend: string;
  dtype: string;
  loadSeconds: number;
  /** Peak RSS after loading, before any forward pass. */
  loadPeakRssBytes: number;
  /** Peak RSS at the end, after generation (and scoring). */
  peakRssBytes: number;
  generation: GenerationRates;
  sharing: { task: string; result: SharingComparison }[];
}

export function parseChildJob(json: string): z.output<typeof childJobSchema> {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (error) {
    throw new InputError(`bench child job: not valid JSON (${(error as Error).message}); pass one JSON object as the only argument`);
  }
  const parsed = childJobSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new InputError(`bench child job: ${issue.path.join('.') || '(root)'}: ${issue.message}; see childJobSchema in harness/bench/child.ts`);
  }
  return parsed.data;
}

async function openRunner(job: z.output<typeof childJobSchema>): Promise<Runner> {
  if (job.backend === 'ort') {
    const { openOrtRunner } = await import('../../runners/ort/runner.ts');
    return openOrtRunner(job.model, { device: 'cpu', offline: true, threads: job.threads });
  }
  const { openLlamaCppRunner } = await import('../../runners/llamacpp/open.ts');
  // A short context: the KV cache is sized by it, and the benched prompts are a few hundred tokens.
  return openLlamaCppRunner(job.model, { offline: true, threads: job.threads, gpu: false, contextSize: 1024, dtype: job.dtype, flashAttention: false });
}

export async function runChildJob(job: z.output<typeof childJobSchema>): Promise<ChildResult> {
  const start = performance.now();
  const runner = await openRunner(job);
  const loadSeconds = (performance.now() - start) / 1000;
  const loadPeakRssBytes = process.resourceUsage().maxRSS * 1024;
  try {
    const generation = await measureGeneration(runner, job);
    const sharing: ChildResult['sharing'] = [];
    for (const t of job.sharing) sharing.push({ task: t.task, result: await compareSharing(runner, t.questions, job.rounds) });
    return { backend: job.backend, dtype: runner.info.dtype, loadSeconds, loadPeakRssBytes, peakRssBytes: process.resourceUsage().maxRSS * 1024, generation, sharing };
  } finally {
    await runner.close();
  }
}

/** Runs `job` in a child process and returns its result; the child's stderr passes through. */
export async function runInChild(job: ChildJob, options: { env?: NodeJS.ProcessEnv } = {}): Promise<ChildResult> {
  const what = `bench child (${job.backend} ${job.model})`;
  return (await runBenchChild(fileURLToPath(import.meta.url), [JSON.stringify(job)], { prefix: RESULT_PREFIX, what, env: options.env })) as ChildResult;
}

async function main(): Promise<number> {
  try {
    const result = await runChildJob(parseChildJob(process.argv[2] ?? ''));
    process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(result)}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`bench child: ${(error as Error).message}\n`);
    return error instanceof InputError ? 2 : 3;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main();
}
