// One cell, in the process that runs it: load the task's documents, open the runner, turn each
// document into requests, score the answers, and append sample, memory, throughput and (last)
// metric records. Metric records go last because their presence is what marks a cell complete
// for resume (execute.ts).
import { createHash } from 'node:crypto';
import { countModelParams } from '../params/index.ts';
import { applyPeftToCount } from '../params/peft.ts';
import { resolveLocalCheckpoint } from '../../runners/hf/checkpoint.ts';
import { openRunner, type RemoteOptions } from '../../runners/open.ts';
import type { Runner } from '../../runners/types.ts';
import { RecordWriter } from '../../results/store.ts';
import type { SampleRecord } from '../../results/schema.ts';
import { meanStderr, scoreMultipleChoice } from '../../suites/score.ts';
import type { Task } from '../../suites/types.ts';
import { multipleChoiceRequests } from '../../suites/multiple-choice.ts';
import type { Cell } from './plan.ts';
import { importTasks } from './tasks.ts';

export interface CellContext {
  recordsPath: string;
  runId: string;
  taskModule?: string;
  offline: boolean;
  env?: NodeJS.ProcessEnv;
  /** `--backend openai`: the server to talk to. */
  remote?: RemoteOptions;
  onProgress?: (done: number, total: number) => void;
}

export interface MetricSummary {
  value: number;
  stderr: number | null;
  n: number;
}

export type CellOutcome =
  | { status: 'ok'; metrics: Record<string, MetricSummary>; source: string }
  | { status: 'skipped'; reason: string };

const now = (): string => new Date().toISOString();
const promptHash = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 16);

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

type Scored = Pick<SampleRecord, 'prompt_hash' | 'target' | 'response' | 'loglikelihoods' | 'metrics'>;

async function scoreDoc<D>(task: Task<D>, doc: D, cell: Cell, runner: Runner): Promise<Scored> {
  if (cell.protocol === 'loglikelihood') {
    if (!task.multipleChoice) throw new Error(`task ${task.name} lists the loglikelihood protocol but has no multipleChoice()`);
    const mc = task.multipleChoice(doc);
    const results = await collect(runner.loglikelihood(multipleChoiceRequests(mc)));
    const logprobs = results.map((r) => r.logprob);
    return { prompt_hash: promptHash(mc.contexts ? mc.contexts.join('\u0000') : mc.context), target: mc.gold, loglikelihoods: logprobs, metrics: scoreMultipleChoice(mc, logprobs) };
  }
  if (!task.generation || !task.scoreGeneration) throw new Error(`task ${task.name} lists the generation protocol but lacks generation() or scoreGeneration()`);
  const prompt = task.generation(doc);
  const [result] = await collect(runner.generate([{ context: prompt.prompt, until: prompt.until, maxTokens: prompt.maxTokens }]));
  const response = result?.text ?? '';
  return { prompt_hash: promptHash(prompt.prompt), target: prompt.target, response, metrics: task.scoreGeneration(doc, response) };
}

/** Runs `cell` in this process. Throws on failure; the caller turns that into an error record. */
export async function runCell(cell: Cell, ctx: CellContext): Promise<CellOutcome> {
  const task = (await importTasks(ctx.taskModule)).find((t) => t.name === cell.task);
  if (!task) throw new Error(`task ${cell.task} is not in the task registry`);
  const loaded = await task.load({ dataPath: cell.dataPath ?? undefined, offline: ctx.offline, limit: cell.limit ?? undefined, env: ctx.env });
  if (loaded.status === 'skipped') return { status: 'skipped', reason: loaded.reason };
  const docs = cell.limit === null ? loaded.docs : loaded.docs.slice(0, cell.limit);
  if (docs.length === 0) throw new Error(`task ${cell.task}: no documents to evaluate in ${loaded.source}`);
  const runner = await openRunner({ backend: cell.backend, model: cell.model, peftArg: cell.peft?.arg ?? null, offline: ctx.offline, env: ctx.env, remote: ctx.remote });
  const writer = new RecordWriter(ctx.recordsPath);
  const base = { run_id: ctx.runId, cell_id: cell.id };
  try {
    const perMetric = new Map<string, number[]>();
    for (const [i, doc] of docs.entries()) {
      const scored = await scoreDoc(task, doc, cell, runner);
      writer.write({ kind: 'sample', ...base, time: now(), task: task.name, doc_id: task.docId(doc), ...scored });
      for (const [name, value] of Object.entries(scored.metrics)) {
        const list = perMetric.get(name) ?? [];
        list.push(value);
        perMetric.set(name, list);
      }
      ctx.onProgress?.(i + 1, docs.length);
    }
    if (cell.backend !== 'null' && cell.backend !== 'openai' && !cell.model.endsWith('.gguf')) {
      // The runner has just opened the checkpoint, so it is local now; its config gives exact counts.
      const local = resolveLocalCheckpoint(cell.model, { offline: true, env: ctx.env });
      if (!('download' in local)) {
        // Same figures as `llama-eval params --model M --peft P --json` (harness/params/report.ts).
        const p = countModelParams(local.arch);
        const adapter = cell.peft ? applyPeftToCount(cell.peft.arg, local.arch) : null;
        writer.write({
          kind: 'params', ...base, time: now(), model: cell.model,
          total_params: p.total + (adapter?.addedParams ?? 0), active_params: p.active + (adapter?.addedParams ?? 0), embedding_params: p.embedding,
          trainable_params: adapter ? adapter.trainableParams : p.total, ...(p.vision === null ? {} : { vision_params: p.vision }),
          peft: adapter?.peft ?? null, components: { ...p.components, ...Object.fromEntries(Object.entries(adapter?.components ?? {}).map(([k, v]) => [`peft.${k}`, v])) },
        });
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
    return { status: 'ok', metrics, source: loaded.source };
  } finally {
    writer.close();
    await runner.close();
  }
}
