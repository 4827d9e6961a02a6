// One cell, in the process that runs it: load the task's documents, open the runner, turn each
// document into requests, score the answers, and append sample, memory, throughput and (last)
// metric records. Metric records go last because their presence is what marks a cell complete
// for resume (execute.ts).
import { createHash } from 'node:crypto';
import { openRunner, type RemoteOptions } from '../../runners/open.ts';
import { CachedRunner, type CacheKeyParts } from '../../runners/cached.ts';
import type { Runner } from '../../runners/types.ts';
import { RecordWriter } from '../../results/store.ts';
import type { SampleRecord } from '../../results/schema.ts';
import { meanStderr, scoreMultipleChoice } from '../../suites/score.ts';
import { fewshotSampler, withFewshot, withFewshotGeneration } from '../../suites/fewshot.ts';
import type { GenerationPrompt, MultipleChoice, Protocol, Task } from '../../suites/types.ts';
import { multipleChoiceRequests } from '../../suites/multiple-choice.ts';
import { docRange, type Cell } from './plan.ts';
import { importTasks } from './tasks.ts';

export interface CellContext {
  recordsPath: string;
  runId: string;
  taskModule?: string;
  offline: boolean;
  env?: NodeJS.ProcessEnv;
  /** `--backend openai`: the server to talk to. */
  remote?: RemoteOptions;
  /** Documents per runner call (`--batch-size`); 1 when absent. */
  batchSize?: number;
  /** The response cache (runners/cached.ts) and this cell's key parts; absent: no cache. */
  cache?: CellCache;
  /** Documents done of total, and tokens the runner has processed so far (for tokens/s). */
  onProgress?: (done: number, total: number, tokens: number) => void;
  /**
   * Called once the cell's records are written and closed, before the runner is closed: the cell
   * process reports here, so the parent moves on while the runtime tears down (10-200 ms, bench:run).
   */
  onComplete?: (outcome: CellOutcome) => Promise<void>;
}

export interface CellCache extends CacheKeyParts {
  dir: string;
}

export interface MetricSummary {
  value: number;
  stderr: number | null;
  n: number;
}

export type CellOutcome =
  | {
    status: 'ok'; metrics: Record<string, MetricSummary>; source: string;
    /** Wall seconds spent inside the runner: opening it and answering requests (bench:run subtracts it). */
    runnerSeconds: number;
  }
  | { status: 'skipped'; reason: string };

const now = (): string => new Date().toISOString();
const promptHash = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 16);

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

type Scored = Pick<SampleRecord, 'prompt_hash' | 'target' | 'response' | 'loglikelihoods' | 'metrics'>;

/** A document's prompt, few-shot examples included: what the runner is asked and how to score it. */
export type DocPrompt = { protocol: 'loglikelihood'; mc: MultipleChoice } | { protocol: 'generation'; prompt: GenerationPrompt };

/** The prompt for `doc` under `protocol`, with `shots` (documents drawn by the few-shot sampler) as worked examples. */
export function docPrompt<D>(task: Task<D>, doc: D, protocol: Protocol, shots: readonly D[] = []): DocPrompt {
  if (protocol === 'loglikelihood') {
    if (!task.multipleChoice) throw new Error(`task ${task.name} lists the loglikelihood protocol but has no multipleChoice()`);
    const mc = task.multipleChoice.bind(task);
    return { protocol, mc: withFewshot(mc(doc), shots.map(mc)) };
  }
  if (!task.generation || !task.scoreGeneration) throw new Error(`task ${task.name} lists the generation protocol but lacks generation() or scoreGeneration()`);
  const gen = task.generation.bind(task);
  return { protocol, prompt: withFewshotGeneration(gen(doc), shots.map(gen)) };
}

/**
 * Scores a batch of documents with one runner call (`--batch-size` documents' requests together,
 * so a batching backend sees them at once); results come back in request order and are split per document.
 */
async function scoreBatch<D>(task: Task<D>, docs: readonly D[], prompts: readonly DocPrompt[], runner: Runner, clock: { ms: number }): Promise<Scored[]> {
  const first = prompts[0];
  if (!first) return [];
  const timed = async <T>(items: AsyncIterable<T>): Promise<T[]> => {
    const start = performance.now();
    try {
      return await collect(items);
    } finally {
      clock.ms += performance.now() - start;
    }
  };
  if (first.protocol === 'loglikelihood') {
    const mcs = prompts.map((p) => (p as Extract<DocPrompt, { protocol: 'loglikelihood' }>).mc);
    const results = await timed(runner.loglikelihood(mcs.flatMap((mc) => multipleChoiceRequests(mc).map((r) => ({ ...r, images: mc.images })))));
    let at = 0;
    return mcs.map((mc) => {
      const logprobs = results.slice(at, (at += mc.choices.length)).map((r) => r.logprob);
      return { prompt_hash: promptHash(mc.contexts ? mc.contexts.join('\u0000') : mc.context), target: mc.gold, loglikelihoods: logprobs, metrics: scoreMultipleChoice(mc, logprobs) };
    });
  }
  const gens = prompts.map((p) => (p as Extract<DocPrompt, { protocol: 'generation' }>).prompt);
  const results = await timed(runner.generate(gens.map((g) => ({ context: g.prompt, until: g.until, maxTokens: g.maxTokens, images: g.images }))));
  return gens.map((g, i) => {
    const response = results[i]?.text ?? '';
    return { prompt_hash: promptHash(g.prompt), target: g.target, response, metrics: task.scoreGeneration!(docs[i] as D, response) };
  });
}

async function openCellRunner(cell: Cell, ctx: CellContext): Promise<Runner> {
  const runner = await openRunner({ backend: cell.backend, model: cell.model, peftArg: cell.peft?.arg ?? null, offline: ctx.offline, env: ctx.env, remote: ctx.remote, dtype: cell.dtype });
  return ctx.cache ? new CachedRunner(runner, ctx.cache.dir, ctx.cache) : runner;
}

/** Runs `cell` in this process. Throws on failure; the caller turns that into an error record. */
export async function runCell(cell: Cell, ctx: CellContext): Promise<CellOutcome> {
  const task = (await importTasks(ctx.taskModule)).find((t) => t.name === cell.task);
  if (!task) throw new Error(`task ${cell.task} is not in the task registry`);
  const k = cell.numFewshot ?? 0;
  // Few-shot examples come from the whole split (lm-eval draws from it minus the asked document when a
  // task has no training split), so with --limit the pool is loaded unlimited and only the asked docs are cut.
  const loaded = await task.load({ dataPath: cell.dataPath ?? undefined, offline: ctx.offline, limit: k > 0 ? undefined : cell.limit ?? undefined, env: ctx.env });
  if (loaded.status === 'skipped') return { status: 'skipped', reason: loaded.reason };
  // `--shard` may give this cell one contiguous range of the documents (plan.ts shardPlan).
  const docs = docRange(cell, cell.limit === null ? loaded.docs : loaded.docs.slice(0, cell.limit));
  if (docs.length === 0) throw new Error(`task ${cell.task}: no documents to evaluate in ${loaded.source}`);
  const sample = fewshotSampler(loaded.docs, (d) => task.docId(d), cell.seed);
  const opening = performance.now();
  const runner = await openCellRunner(cell, ctx);
  const clock = { ms: performance.now() - opening };
  try {
    const outcome = await writeCellRecords(cell, ctx, task, docs, sample, runner, clock, loaded.source);
    await ctx.onComplete?.(outcome);
    return outcome;
  } finally {
    await runner.close();
  }
}

/** Scores every document and appends the cell's records; the records file is closed when this returns or throws. */
async function writeCellRecords<D>(
  cell: Cell, ctx: CellContext, task: Task<D>, docs: readonly D[], sample: (forDoc: string, k: number) => D[], runner: Runner, clock: { ms: number }, source: string,
): Promise<CellOutcome> {
  const k = cell.numFewshot ?? 0;
  const writer = new RecordWriter(ctx.recordsPath);
  const base = { run_id: ctx.runId, cell_id: cell.id };
  const batchSize = ctx.batchSize ?? 1;
  try {
    const perMetric = new Map<string, number[]>();
    for (let start = 0; start < docs.length; start += batchSize) {
      const batch = docs.slice(start, start + batchSize);
      const prompts = batch.map((doc) => docPrompt(task, doc, cell.protocol, sample(task.docId(doc), k)));
      const scored = await scoreBatch(task, batch, prompts, runner, clock);
      for (const [i, s] of scored.entries()) {
        writer.write({ kind: 'sample', ...base, time: now(), task: task.name, doc_id: task.docId(batch[i]!), ...s });
        for (const [name, value] of Object.entries(s.metrics)) {
          const list = perMetric.get(name) ?? [];
          list.push(value);
          perMetric.set(name, list);
        }
      }
      const t = runner.throughput();
      ctx.onProgress?.(start + batch.length, docs.length, t.prefillTokens + t.decodeTokens);
    }
    if (cell.backend !== 'null' && cell.backend !== 'openai' && !cell.model.endsWith('.gguf')) {
      // The runner has just opened the checkpoint, so it is local now; its config gives exact counts.
      // Imported here, not at the top: checkpoint.ts costs ~0.5 s to load, which a null cell's process need not pay.
      const [{ resolveLocalCheckpoint }, { paramsBreakdown }] = await Promise.all([
        import('../../runners/hf/checkpoint.ts'), import('../params/report.ts'),
      ]);
      const local = resolveLocalCheckpoint(cell.model, { offline: true, env: ctx.env });
      if (!('download' in local)) {
        // The figures of `llama-eval params --model M --peft P --json`.
        const { report } = paramsBreakdown({ id: cell.model, arch: local.arch }, cell.peft?.arg);
        writer.write({ kind: 'params', ...base, time: now(), ...report });
      }
    }
    const mem = runner.memory();
    writer.write({
      kind: 'memory', ...base, time: now(), peak_rss_bytes: Math.round(mem.peakRssBytes), arena_bytes: mem.arenaBytes, kv_cache_bytes: mem.kvCacheBytes, device_bytes: mem.deviceBytes,
    });
    const t = runner.throughput();
    const rate = (tokens: number, seconds: number): number | null => (seconds > 0 ? tokens / seconds : null);
    writer.write({
      kind: 'throughput', ...base, time: now(),
      prefill_tokens_per_s: rate(t.prefillTokens, t.prefillSeconds), decode_tokens_per_s: rate(t.decodeTokens, t.decodeSeconds),
      tokens: t.prefillTokens + t.decodeTokens, seconds: t.prefillSeconds + t.decodeSeconds,
    });
    const wanted = task.metrics[cell.protocol] ?? [...perMetric.keys()];
    const metrics: Record<string, MetricSummary> = {};
    for (const name of wanted) {
      const values = perMetric.get(name);
      if (!values || values.length !== docs.length) throw new Error(`task ${task.name}: metric ${name} is missing from ${docs.length - (values?.length ?? 0)} of ${docs.length} samples`);
      metrics[name] = { ...meanStderr(values), n: values.length };
    }
    for (const [name, m] of Object.entries(metrics)) {
      writer.write({ kind: 'metric', ...base, time: now(), task: task.name, metric: name, value: m.value, stderr: m.stderr, n: m.n, model: cell.model, peft: cell.peft?.label ?? null });
    }
    return { status: 'ok', metrics, source, runnerSeconds: clock.ms / 1000 };
  } finally {
    writer.close();
  }
}
