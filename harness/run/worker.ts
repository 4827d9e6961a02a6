// Child-process entry for one cell (forked by execute.ts with tsx). A cell that throws writes its
// own error record here and reports `failed`; one that dies outright (OOM, native crash,
// process.exit in a task) never reports, and the parent writes the error record for it.
import { appendRecords } from '../../results/store.ts';
import { runCell, type CellContext, type CellOutcome } from './cell.ts';
import type { Cell } from './plan.ts';

export type ToWorker = { type: 'run'; cell: Cell; ctx: Omit<CellContext, 'onProgress'> };
export type FromWorker =
  | { type: 'progress'; done: number; total: number }
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
    const outcome = await runCell(cell, { ...ctx, onProgress: (done, total) => void send({ type: 'progress', done, total }) });
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

process.once('message', (message: ToWorker) => {
  void handle(message).then((code) => process.exit(code));
});
