// The cell process's side of progress: how often it reports to the parent. Its own file, not
// progress.ts: that one loads cli-progress (~100 ms), which a cell process has no use for.
/**
 * Wraps a cell process's progress report so it passes at most once every `everyMs`, and always when
 * the cell's last document is done: a bar needs no more, and a message a document (an IPC write, and a
 * parse in the parent) cost a tiny model's cell 20-60 ms (bench:run's profile, docs/benchmarks.md).
 */
export function throttleProgress(
  report: (done: number, total: number, tokens: number) => void, everyMs: number, clock: () => number = () => performance.now(),
): (done: number, total: number, tokens: number) => void {
  let last = -Infinity;
  return (done, total, tokens) => {
    const now = clock();
    if (done < total && now - last < everyMs) return;
    last = now;
    report(done, total, tokens);
  };
}
