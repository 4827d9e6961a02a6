// Child-process entry for one cell (forked by execute.ts with tsx). A cell that throws writes its
// own error record here and reports `failed`; one that dies outright (OOM, native crash,
// process.exit in a task) never reports, and the parent writes the error record for it.
import type { CellContext, CellOutcome } from './cell.ts';
import type { Cell } from './plan.ts';
import { throttleProgress } from './progress-throttle.ts';
import { importTasks } from './tasks.ts';

export type ToWorker = { type: 'run'; cell: Cell; ctx: Omit<CellContext, 'onProgress' | 'onComplete'> };
export type FromWorker =
  /** The process has loaded its modules and begins the cell (execute.ts starts the next spare then). */
  | { type: 'ready' }
  | { type: 'progress'; done: number; total: number; tokens: number }
  | { type: 'done'; outcome: CellOutcome }
  | { type: 'failed'; message: string };

// The process is started ahead of its cell (execute.ts), so its ~1 s of module loading overlaps other
// work; the first cell's still waits for it. The cell engine and the task registry (argv[2], else the
// default) load at once: tsx resolves and transforms modules on its own thread, so one graph's
// evaluation overlaps the other's loading. A registry that fails to load is reported by the cell's own
// import of it (cell.ts).
const tasksLoaded = importTasks(process.argv[2] || undefined).catch(() => undefined);
const cellEngine = import('./cell.ts');
const recordStore = import('../../results/store.ts');
// Settled here so a failure is not an unhandled rejection before a cell asks for it.
cellEngine.catch(() => undefined);
recordStore.catch(() => undefined);
// Then what a model cell imports at its end (cell.ts, params records), while the process waits.
void Promise.all([tasksLoaded, cellEngine]).then(() => import('../params/report.ts')).catch(() => undefined);

/** Progress messages at most this often (progress-throttle.ts). */
const PROGRESS_EVERY_MS = 100;

function send(message: FromWorker): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });
}

async function handle(message: ToWorker): Promise<number> {
  const { cell, ctx } = message;
  let reported = false;
  const report = (outcome: CellOutcome): Promise<void> => {
    reported = true;
    return send({ type: 'done', outcome });
  };
  try {
    const { runCell } = await cellEngine;
    await tasksLoaded;
    void send({ type: 'ready' });
    // A cell that ran reports as soon as its records are closed (onComplete), before its runner closes;
    // a skipped one, which opened no runner, when runCell returns.
    const outcome = await runCell(cell, {
      ...ctx, onComplete: report, onProgress: throttleProgress((done, total, tokens) => void send({ type: 'progress', done, total, tokens }), PROGRESS_EVERY_MS),
    });
    if (!reported) await report(outcome);
    return 0;
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    const { appendRecords } = await recordStore;
    appendRecords(ctx.recordsPath, [{
      kind: 'error', run_id: ctx.runId, cell_id: cell.id, time: new Date().toISOString(),
      message: e.message || e.name, stack: e.stack, task: cell.task, stage: 'execute',
    }]);
    // After a result was reported (the runner failed to close) the parent has moved on and ignores this;
    // the error record above still says what happened.
    await send({ type: 'failed', message: e.message });
    return 1;
  }
}

// A spare process whose parent has gone (killed run, or no cell left for it) has nothing to do.
process.once('disconnect', () => process.exit(0));
process.once('message', (message: ToWorker) => {
  void handle(message).then((code) => process.exit(code));
});
