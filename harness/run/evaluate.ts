// The whole `llama-eval run` pipeline as a function: resolve tasks, plan, load each task's data
// once (for the manifest's hashes and to list skipped tasks), hash the model files, execute.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { resolveLocalCheckpoint } from '../../runners/hf/checkpoint.ts';
import type { RemoteOptions } from '../../runners/open.ts';
import type { Backend } from '../../runners/types.ts';
import type { Protocol } from '../../suites/types.ts';
import { executeRun, type ExecuteResult, type TaskPreparation } from './execute.ts';
import { buildManifest, sha256File, type ManifestFile } from './manifest.ts';
import { planRun, type PlanPeft } from './plan.ts';
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
}

const MODEL_FILE = /^(config\.json|generation_config\.json|tokenizer(_config)?\.json|special_tokens_map\.json|.*\.safetensors(\.index\.json)?)$/;

/** Files of every adapter directory given to --peft (spec strings have none). */
async function adapterFiles(pefts: readonly PlanPeft[]): Promise<ManifestFile[]> {
  const files: ManifestFile[] = [];
  for (const { arg } of pefts) {
    if (!existsSync(arg)) continue;
    const dir = statSync(arg).isDirectory() ? arg : dirname(arg);
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (/^adapter_(config\.json|model\.safetensors)$/.test(name) && statSync(path).isFile()) files.push({ role: 'adapter', path, sha256: await sha256File(path) });
    }
  }
  return files;
}

async function modelFiles(models: readonly string[], backend: Backend, options: { offline: boolean; env?: NodeJS.ProcessEnv }): Promise<ManifestFile[]> {
  // null runs no model; a server's weights are not ours to hash (the manifest keeps its URL in config).
  if (backend === 'null' || backend === 'openai') return [];
  const files: ManifestFile[] = [];
  for (const model of models) {
    if (model.endsWith('.gguf') && existsSync(model)) {
      files.push({ role: 'model', path: model, sha256: await sha256File(model) });
      continue;
    }
    // Also the early check that the model exists: an unknown id is an InputError before any cell runs.
    const local = resolveLocalCheckpoint(model, { offline: options.offline, env: options.env });
    if ('download' in local) continue; // fetched inside its cell; the cell's records name it
    for (const name of readdirSync(local.dir).sort()) {
      const path = join(local.dir, name);
      if (MODEL_FILE.test(name) && statSync(path).isFile()) files.push({ role: 'model', path, sha256: await sha256File(path) });
    }
  }
  return files;
}

export async function evaluate(options: EvaluateOptions): Promise<ExecuteResult> {
  const all = await importTasks(options.taskModule);
  const tasks = selectTasks(all, options.suites, options.tasks);
  const plan = planRun({
    models: options.models, pefts: options.pefts, tasks, backend: options.backend,
    protocol: options.protocol, limit: options.limit, seed: options.seed, dataPath: options.dataPath,
  });
  const files = [...await modelFiles(options.models, options.backend, options), ...await adapterFiles(options.pefts)];
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
    ...(options.remote ? { base_url: options.remote.baseUrl } : {}),
    cells: plan.cells.map((c) => c.id),
  };
  return executeRun({
    outDir: options.outDir, plan, prepared,
    expectedMetrics: (cell) => byName.get(cell.task)?.metrics[cell.protocol],
    manifest: (runId) => buildManifest({ runId, seed: options.seed, files, config }),
    taskModule: options.taskModule, offline: options.offline, env: options.env, remote: options.remote, progress: options.progress,
  });
}
