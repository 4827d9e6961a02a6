// plan -> execute -> records. Each cell runs in its own child process (tsx-forked worker.ts), one
// at a time, so a crash or OOM costs one cell: the parent records it as an `error` and goes on.
// Resume: cells whose metric records are all in <out>/records.jsonl are not run again; the
// summary is always rebuilt from the records file, so a resumed run ends with the same table.
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { appendRecords, readRecords, repairTornTail, writeJsonAtomic } from '../../results/store.ts';
import type { ManifestRecord, RunRecord } from '../../results/schema.ts';
import type { CellCache, CellOutcome } from './cell.ts';
import { shardPlan, type Cell, type Plan, type Shard } from './plan.ts';
import { plainProgress, type Progress } from './progress.ts';
import { summarize, type RunSummary, type SkipEntry } from './summary.ts';
import type { FromWorker, ToWorker } from './worker.ts';
import type { RemoteOptions } from '../../runners/open.ts';

const WORKER = new URL('./worker.ts', import.meta.url);
// tsx's "." export is one file for every condition, so require.resolve finds what --import needs
// (import.meta.resolve is missing under vitest's transform).
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** What the parent learned about a task before forking (data loaded once, up front, for the manifest). */
export type TaskPreparation = { status: 'loaded' } | { status: 'skipped'; reason: string } | { status: 'error'; message: string };

export interface ExecuteOptions {
  outDir: string;
  plan: Plan;
  /** Metric names that make a cell complete, per task (missing: any metric record does). */
  expectedMetrics: (cell: Cell) => readonly string[] | undefined;
  prepared: ReadonlyMap<string, TaskPreparation>;
  /** Builds the manifest of a fresh run (not called when resuming one that has it). */
  manifest: (runId: string) => ManifestRecord;
  taskModule?: string;
  offline: boolean;
  env?: NodeJS.ProcessEnv;
  remote?: RemoteOptions;
  progress?: Progress;
  /** Documents per runner call (`--batch-size`). */
  batchSize?: number;
  /** The response cache for a cell (model and adapter hashes), or null to run it uncached. */
  cacheFor?: (cell: Cell) => CellCache | null;
  /** `--shard i/N`: run only this slice of `plan` (plan.ts shardPlan); the manifest records it for `merge`. */
  shard?: Shard;
  /** Cell processes the caller started early (evaluate.ts); closed here when the run ends. */
  processes?: CellProcesses;
}

/** Config keys that differ between machines without changing a number, so shards of one plan may differ in them. */
const MACHINE_KEYS = new Set(['response_cache', 'offline', 'batch_size', 'base_url', 'shard']);

/** The hash `merge` compares: every config entry that decides the numbers (the full plan's cell ids among them). */
export function planHash(config: Record<string, unknown>): string {
  const kept = Object.entries(config).filter(([key]) => !MACHINE_KEYS.has(key)).sort(([a], [b]) => a.localeCompare(b));
  return createHash('sha256').update(JSON.stringify(kept)).digest('hex').slice(0, 16);
}

/** What a shard's manifest carries under config.shard: enough for `merge` to check and rebuild the whole run. */
export interface ShardManifest extends Shard {
  plan_hash: string;
  /** The unsharded plan's cells, in plan order: merge summarises against them. */
  plan: Cell[];
}

function withShard(manifest: ManifestRecord, plan: Plan, shard: Shard | undefined): ManifestRecord {
  if (!shard) return manifest;
  const entry: ShardManifest = { ...shard, plan_hash: planHash(manifest.config), plan: plan.cells };
  return { ...manifest, config: { ...manifest.config, shard: entry } };
}

function newRunId(): string {
  return `${new Date().toISOString().replace(/[:.]/g, '-')}-${randomBytes(3).toString('hex')}`;
}

export function completedCells(records: readonly RunRecord[], cells: readonly Cell[], expected: ExecuteOptions['expectedMetrics']): Set<string> {
  const metrics = new Map<string, Set<string>>();
  for (const r of records) if (r.kind === 'metric') metrics.set(r.cell_id, (metrics.get(r.cell_id) ?? new Set()).add(r.metric));
  const done = new Set<string>();
  for (const cell of cells) {
    const have = metrics.get(cell.id);
    if (!have) continue;
    const want = expected(cell);
    if (!want || want.every((m) => have.has(m))) done.add(cell.id);
  }
  return done;
}

type ForkResult = { outcome: CellOutcome } | { failed: string } | { crashed: string };

/** A forked cell process, started before its cell is known so that its start-up overlaps other work. */
interface Worker {
  child: ChildProcess;
  /** Set once the process has exited (possibly before it was given a cell). */
  exit: { code: number | null; signal: NodeJS.Signals | null } | null;
  startError: string | null;
}

function spawnWorker(env: NodeJS.ProcessEnv, taskModule: string | undefined): Worker {
  const child = fork(WORKER, taskModule === undefined ? [] : [taskModule], { execArgv: ['--import', TSX], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env });
  const worker: Worker = { child, exit: null, startError: null };
  child.on('exit', (code, signal) => {
    worker.exit = { code, signal };
  });
  child.on('error', (e) => {
    worker.startError ??= `cannot start the cell process: ${e.message}`;
  });
  return worker;
}

/** Resolves once the process is gone (or never started). */
function exited(worker: Worker): Promise<void> {
  if (worker.exit || worker.startError) return Promise.resolve();
  return new Promise((resolve) => {
    worker.child.once('exit', () => resolve());
    worker.child.once('error', () => resolve());
  });
}

/**
 * Cell processes started ahead of their cells. A process takes ~1 s to load tsx, the runners and the
 * task registry; started early, that overlaps the parent's own preparation (the first cell) or the
 * cell before (the others). Every cell still gets a fresh process of its own.
 */
export class CellProcesses {
  private spare: Worker | null = null;
  /** Processes given a cell; each exits by itself once it has reported. */
  private readonly taken: Worker[] = [];
  private readonly env: NodeJS.ProcessEnv;
  private readonly taskModule: string | undefined;

  constructor(env: NodeJS.ProcessEnv, taskModule: string | undefined) {
    this.env = env;
    this.taskModule = taskModule;
  }

  /** Starts a process for a cell to come, unless one is already waiting. */
  prestart(): void {
    this.spare ??= spawnWorker(this.env, this.taskModule);
  }

  /** The process for the cell about to run: the waiting one, else a new one. */
  take(): Worker {
    const worker = this.spare ?? spawnWorker(this.env, this.taskModule);
    this.spare = null;
    this.taken.push(worker);
    return worker;
  }

  /**
   * Ends a waiting process that no cell will need (it has no cell, so it holds nothing), and waits for
   * the cells' processes to be gone, so that a finished run leaves none behind.
   */
  async close(): Promise<void> {
    const gone = this.taken.splice(0);
    if (this.spare) {
      if (!this.spare.exit) this.spare.child.kill();
      gone.push(this.spare);
      this.spare = null;
    }
    await Promise.all(gone.map(exited));
  }
}

/**
 * Settles on the cell's result message, without waiting for the process to exit: by then the cell has
 * written and closed its records, and its exit (~35 ms, tearing down the runtime) overlaps the next cell.
 * A process that exits without a result crashed.
 */
function runInChild(cell: Cell, message: ToWorker, progress: Progress, worker: Worker, onReady: () => void): Promise<ForkResult> {
  return new Promise((resolve) => {
    const { child } = worker;
    const died = (code: number | null, signal: NodeJS.Signals | null): ForkResult =>
      ({ crashed: worker.startError ?? `cell process for ${cell.id} died (${signal ? `signal ${signal}` : `exit code ${code}`}) before reporting a result` });
    if (worker.exit) return resolve(died(worker.exit.code, worker.exit.signal));
    child.on('message', (m: FromWorker) => {
      if (m.type === 'ready') onReady();
      else if (m.type === 'progress') progress.cellDocs(m.done, m.total, m.tokens);
      else if (m.type === 'done') resolve({ outcome: m.outcome });
      else resolve({ failed: m.message });
    });
    // A promise settles once: after a result message, the exit changes nothing. A start error
    // (spawnWorker's startError) is reported when the process exits.
    child.on('exit', (code, signal) => resolve(died(code, signal)));
    child.send(message);
  });
}

export interface ExecuteResult {
  summary: RunSummary;
  /** Cells found complete in the records and not run again. */
  resumedCells: number;
  /** Wall seconds the cells run now spent inside their runners (opening them and answering requests). */
  runnerSeconds: number;
}

export async function executeRun(options: ExecuteOptions): Promise<ExecuteResult> {
  const { outDir } = options;
  const plan = options.shard ? shardPlan(options.plan, options.shard) : options.plan;
  mkdirSync(outDir, { recursive: true });
  const recordsPath = join(outDir, 'records.jsonl');
  // No cell is running yet, so an unterminated last line is a crash fragment of a killed run.
  if (existsSync(recordsPath)) repairTornTail(recordsPath);
  const existing = existsSync(recordsPath) ? readRecords(recordsPath).records : [];
  const runId = existing.find((r) => r.kind === 'manifest')?.run_id ?? existing[0]?.run_id ?? newRunId();
  if (!existing.some((r) => r.kind === 'manifest')) appendRecords(recordsPath, [withShard(options.manifest(runId), options.plan, options.shard)]);
  const done = completedCells(existing, plan.cells, options.expectedMetrics);
  const progress = options.progress ?? plainProgress(() => undefined);
  const skipped: SkipEntry[] = plan.skipped.map((s) => ({ ...s }));
  const pending = plan.cells.filter((c) => !done.has(c.id));
  const label = (c: Cell) => c.id.split('/').slice(0, -1).join('/');
  let runnerSeconds = 0;
  const processes = options.processes ?? new CellProcesses(options.env ?? process.env, options.taskModule);
  let closing: Promise<void> = Promise.resolve();
  try {
    for (const [index, cell] of plan.cells.entries()) {
      if (done.has(cell.id)) continue;
      const prep = options.prepared.get(cell.task) ?? { status: 'loaded' };
      progress.cellStart(label(cell), index, plan.cells.length);
      const errorRecord = (message: string, stage: string): void => appendRecords(recordsPath, [{
        kind: 'error', run_id: runId, cell_id: cell.id, time: new Date().toISOString(), message, task: cell.task, stage,
      }]);
      if (prep.status === 'skipped') {
        skipped.push({ model: cell.model, peft: cell.peft?.label ?? null, task: cell.task, reason: prep.reason });
        progress.cellEnd(label(cell), `skipped: ${prep.reason}`);
        continue;
      }
      if (prep.status === 'error') {
        errorRecord(prep.message, 'load');
        progress.cellEnd(label(cell), `error: ${prep.message}`);
        continue;
      }
      const cache = options.cacheFor?.(cell) ?? null;
      const ctx = {
        recordsPath, runId, taskModule: options.taskModule, offline: options.offline, env: options.env, remote: options.remote,
        ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }), ...(cache ? { cache } : {}),
      };
      // The next cell's process starts once this one has loaded its modules, and loads its own while this
      // cell runs (~0.6 s a cell saved). Not before: the first cell's process is still loading when its
      // message is sent, and a second process loading beside it on two cores delayed the first cell by
      // ~0.3 s (bench:run). Not when this is the last cell to run.
      const more = plan.cells.slice(index + 1).some((c) => !done.has(c.id));
      const result = await runInChild(cell, { type: 'run', cell, ctx }, progress, processes.take(), () => {
        if (more) processes.prestart();
      });
      if ('crashed' in result) {
        errorRecord(result.crashed, 'process');
        progress.cellEnd(label(cell), `error: ${result.crashed}`);
      } else if ('failed' in result) {
        progress.cellEnd(label(cell), `error: ${result.failed}`);
      } else if (result.outcome.status === 'skipped') {
        skipped.push({ model: cell.model, peft: cell.peft?.label ?? null, task: cell.task, reason: result.outcome.reason });
        progress.cellEnd(label(cell), `skipped: ${result.outcome.reason}`);
      } else {
        runnerSeconds += result.outcome.runnerSeconds;
        const shown = Object.entries(result.outcome.metrics).map(([k, m]) => `${k}=${m.value.toFixed(4)}`).join(' ');
        progress.cellEnd(label(cell), `ok ${shown}`);
      }
    }
  } finally {
    // A spare left over (the remaining cells were skipped or already done) is not needed. The last
    // cell's process exits while the summary is built (its records are closed before it reports).
    closing = processes.close();
    progress.stop();
  }
  const { records, problems } = readRecords(recordsPath);
  const summary = summarize({ runId, outDir, plan, records, skipped, problems: problems.map((p) => p.message) });
  writeJsonAtomic(join(outDir, 'results.json'), summary);
  await closing;
  return { summary, resumedCells: plan.cells.length - pending.length, runnerSeconds };
}
