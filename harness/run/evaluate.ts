// The whole `llama-eval run` pipeline as a function: resolve tasks, plan, load each task's data
// once (for the manifest's hashes and to list skipped tasks), hash the model files, execute.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { resolveLocalCheckpoint } from '../../runners/hf/checkpoint.ts';
import type { RemoteOptions } from '../../runners/open.ts';
import type { Backend } from '../../runners/types.ts';
import type { Protocol } from '../../suites/types.ts';
import { CellProcesses, executeRun, type ExecuteResult, type TaskPreparation } from './execute.ts';
import { buildManifest, sha256File, type ManifestFile } from './manifest.ts';
import type { CellCache } from './cell.ts';
import { planRun, type Cell, type PlanPeft, type Shard } from './plan.ts';
import type { Progress } from './progress.ts';
import { importTasks, selectTasks } from './tasks.ts';

export interface EvaluateOptions {
  suites: readonly string[];
  tasks: readonly string[];
  models: readonly string[];
  pefts: readonly PlanPeft[];
  backend: Backend;
  protocol: Protocol | null;
  limit: number | null;
  seed: number;
  dataPath: string | null;
  offline: boolean;
  outDir: string;
  taskModule?: string;
  env?: NodeJS.ProcessEnv;
  remote?: RemoteOptions;
  progress?: Progress;
  /** `--num-fewshot K` (default 0). */
  numFewshot?: number;
  /** `--dtype`: compute dtype of the ORT graph (default fp32). */
  dtype?: 'fp32' | 'fp16';
  /** `--batch-size N`: documents per runner call (default 1). */
  batchSize?: number;
  /** Response cache directory (runners/cached.ts); absent or null: no cache (`--no-cache`). */
  cacheDir?: string | null;
  /** `--shard i/N`: run one deterministic slice of the plan (plan.ts shardPlan). */
  shard?: Shard;
}

const MODEL_FILE = /^(config\.json|generation_config\.json|tokenizer(_config)?\.json|special_tokens_map\.json|.*\.safetensors(\.index\.json)?)$/;

/** Files of every adapter directory given to --peft, by argument (spec strings have none). */
async function adapterFiles(pefts: readonly PlanPeft[]): Promise<Map<string, ManifestFile[]>> {
  const byArg = new Map<string, ManifestFile[]>();
  for (const { arg } of pefts) {
    if (!existsSync(arg)) continue;
    const files: ManifestFile[] = [];
    byArg.set(arg, files);
    const dir = statSync(arg).isDirectory() ? arg : dirname(arg);
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (/^adapter_(config\.json|model\.safetensors)$/.test(name) && statSync(path).isFile()) files.push({ role: 'adapter', path, sha256: await sha256File(path) });
    }
  }
  return byArg;
}

/** Each model's files (empty when there are none to hash here); a model absent from the map is not local yet. */
async function modelFiles(models: readonly string[], backend: Backend, options: { offline: boolean; env?: NodeJS.ProcessEnv }): Promise<Map<string, ManifestFile[]>> {
  const byModel = new Map<string, ManifestFile[]>();
  // null runs no model; a server's weights are not ours to hash (the manifest keeps its URL in config).
  if (backend === 'null' || backend === 'openai') return new Map(models.map((m) => [m, []]));
  for (const model of models) {
    if (model.endsWith('.gguf') && existsSync(model)) {
      byModel.set(model, [{ role: 'model', path: model, sha256: await sha256File(model) }]);
      continue;
    }
    // Also the early check that the model exists: an unknown id is an InputError before any cell runs.
    const local = resolveLocalCheckpoint(model, { offline: options.offline, env: options.env });
    if ('download' in local) continue; // fetched inside its cell; the cell's records name it
    const files: ManifestFile[] = [];
    for (const name of readdirSync(local.dir).sort()) {
      const path = join(local.dir, name);
      if (MODEL_FILE.test(name) && statSync(path).isFile()) files.push({ role: 'model', path, sha256: await sha256File(path) });
    }
    byModel.set(model, files);
  }
  return byModel;
}

const digest = (parts: readonly unknown[]): string => createHash('sha256').update(JSON.stringify(parts)).digest('hex');

/**
 * The response cache's key parts for each cell: the model's file hashes (for null and openai, which have
 * none here, the name and server URL), the adapter's file hashes or spec. A model still to be downloaded
 * has no hash yet, so its cells run uncached rather than risk answers from other weights.
 */
function cacheKeys(options: EvaluateOptions, models: Map<string, ManifestFile[]>, adapters: Map<string, ManifestFile[]>): (cell: Cell) => CellCache | null {
  return (cell) => {
    if (!options.cacheDir) return null;
    const files = models.get(cell.model);
    if (!files) return null;
    const modelHash = digest([cell.model, options.remote?.baseUrl ?? null, files.map((f) => f.sha256)]);
    const adapterHash = cell.peft ? digest([cell.peft.label, (adapters.get(cell.peft.arg) ?? []).map((f) => f.sha256), adapters.has(cell.peft.arg) ? null : cell.peft.arg]) : null;
    return { dir: options.cacheDir, modelHash, adapterHash };
  };
}

export async function evaluate(options: EvaluateOptions): Promise<ExecuteResult> {
  // The first cell's process starts now: its ~1 s of loading overlaps the registry import, the file
  // hashing and the data loading below, which used to come before it (bench:run).
  const processes = new CellProcesses(options.env ?? process.env, options.taskModule);
  processes.prestart();
  try {
    return await prepareAndExecute(options, processes);
  } finally {
    await processes.close();
  }
}

/** The settled value, or its error rethrown (so errors surface in the order the steps are written). */
const unwrap = <T>(r: PromiseSettledResult<T>): T => {
  if (r.status === 'rejected') throw r.reason;
  return r.value;
};

async function prepareAndExecute(options: EvaluateOptions, processes: CellProcesses): Promise<ExecuteResult> {
  // The model files are hashed while the task registry loads (~0.35 s of hashing and ~0.8 s of imports,
  // one after the other before; bench:run): the hashes depend only on the options. Both settle before
  // either error is thrown, so a bad task name is still reported before a bad model name.
  const [imported, hashed] = await Promise.allSettled([importTasks(options.taskModule), modelFiles(options.models, options.backend, options)]);
  const tasks = selectTasks(unwrap(imported), options.suites, options.tasks);
  const plan = planRun({
    models: options.models, pefts: options.pefts, tasks, backend: options.backend,
    protocol: options.protocol, limit: options.limit, seed: options.seed, dataPath: options.dataPath, numFewshot: options.numFewshot ?? 0, dtype: options.dtype,
  });
  const models = unwrap(hashed);
  const adapters = await adapterFiles(options.pefts);
  const files = [...[...models.values()].flat(), ...[...adapters.values()].flat()];
  const prepared = new Map<string, TaskPreparation>();
  for (const task of tasks) {
    if (!plan.cells.some((c) => c.task === task.name)) continue;
    try {
      const loaded = await task.load({ dataPath: options.dataPath ?? undefined, offline: options.offline, limit: options.limit ?? undefined, env: options.env });
      if (loaded.status === 'skipped') {
        prepared.set(task.name, { status: 'skipped', reason: loaded.reason });
      } else {
        prepared.set(task.name, { status: 'loaded' });
        for (const f of loaded.files) if (!files.some((g) => g.path === f.path)) files.push({ role: 'data', ...f });
      }
    } catch (error) {
      prepared.set(task.name, { status: 'error', message: error instanceof Error ? error.message : String(error) });
    }
  }
  const byName = new Map(tasks.map((t) => [t.name, t]));
  const config = {
    suites: options.suites, tasks: tasks.map((t) => t.name), models: options.models, pefts: options.pefts, backend: options.backend,
    protocol: options.protocol, limit: options.limit, seed: options.seed, data: options.dataPath, offline: options.offline,
    num_fewshot: options.numFewshot ?? 0, dtype: options.dtype ?? 'fp32', batch_size: options.batchSize ?? 1, response_cache: options.cacheDir ?? null,
    ...(options.remote ? { base_url: options.remote.baseUrl } : {}),
    cells: plan.cells.map((c) => c.id),
  };
  return executeRun({
    outDir: options.outDir, plan, prepared,
    expectedMetrics: (cell) => byName.get(cell.task)?.metrics[cell.protocol],
    manifest: (runId) => buildManifest({ runId, seed: options.seed, files, config }),
    taskModule: options.taskModule, offline: options.offline, env: options.env, remote: options.remote, progress: options.progress,
    batchSize: options.batchSize, cacheFor: cacheKeys(options, models, adapters), shard: options.shard, processes,
  });
}
