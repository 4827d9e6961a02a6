// Child-process entry for one cell (forked by execute.ts with tsx). A cell that throws writes its
// own error record here and reports `failed`; one that dies outright (OOM, native crash,
// process.exit in a task) never reports, and the parent writes the error record for it.
import { appendRecords } from '../../results/store.ts';
import { runCell, type CellContext, type CellOutcome } from './cell.ts';
import type { Cell } from './plan.ts';
import { importTasks } from './tasks.ts';

export type ToWorker = { type: 'run'; cell: Cell; ctx: Omit<CellContext, 'onProgress'> };
export type FromWorker =
  | { type: 'progress'; done: number; total: number; tokens: number }
  | { type: 'done'; outcome: CellOutcome }
  | { type: 'failed'; message: string };

function send(message: FromWorker): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });
}

async function handle(message: ToWorker): Promise<number> {
  const { cell, ctx } = message;
  try {
    const outcome = await runCell(cell, { ...ctx, onProgress: (done, total, tokens) => void send({ type: 'progress', done, total, tokens }) });
    await send({ type: 'done', outcome });
    return 0;
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    appendRecords(ctx.recordsPath, [{
      kind: 'error', run_id: ctx.runId, cell_id: cell.id, time: new Date().toISOString(),
      message: e.message || e.name, stack: e.stack, task: cell.task, stage: 'execute',
    }]);
    await send({ type: 'failed', message: e.message });
    return 1;
  }
}

// Import the task registry (argv[2], else the default) while waiting for a cell: the process is
// started one cell ahead (execute.ts), so this ~0.25 s overlaps the previous cell. A failure here
// is reported by the cell's own import.
void importTasks(process.argv[2] || undefined).catch(() => undefined);

// A spare process whose parent has gone (killed run, or no cell left for it) has nothing to do.
process.once('disconnect', () => process.exit(0));
process.once('message', (message: ToWorker) => {
  void handle(message).then((code) => process.exit(code));
});
