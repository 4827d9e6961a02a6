// Plain progress lines (stderr not a terminal): one line per cell event, the cell's tokens/s on its closing line.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { plainProgress } from '../../harness/run/progress.ts';
import { throttleProgress } from '../../harness/run/progress-throttle.ts';

afterEach(() => vi.restoreAllMocks());

describe('plainProgress', () => {
  it('writes a start and an end line per cell with tokens/s from the runner\'s token count', () => {
    const now = vi.spyOn(performance, 'now');
    const lines: string[] = [];
    const p = plainProgress((s) => lines.push(s));
    now.mockReturnValue(1000);
    p.cellStart('m/base/boolq', 0, 2);
    p.cellDocs(1, 2, 200);
    p.cellDocs(2, 2, 500);
    now.mockReturnValue(3000);
    p.cellEnd('m/base/boolq', 'ok acc=0.5000');
    // 500 tokens in the 2 s between start and end: 250 tokens/s.
    now.mockReturnValue(3000);
    p.cellStart('m/base/piqa', 1, 2);
    p.cellEnd('m/base/piqa', 'skipped: offline');
    p.stop();
    expect(lines).toEqual([
      '[1/2] m/base/boolq ...\n', '[1/2] m/base/boolq ok acc=0.5000 (250.0 tok/s)\n',
      '[2/2] m/base/piqa ...\n', '[2/2] m/base/piqa skipped: offline\n',
    ]);
  });
});

describe('throttleProgress', () => {
  it('passes a report at most once per interval, and always the last document', () => {
    let t = 0;
    const seen: number[][] = [];
    const report = throttleProgress((done, total, tokens) => seen.push([done, total, tokens]), 100, () => t);
    // Reports at t = 0, 50, 99, 100, 150 and the last at 160 (< 100 ms after the one passed at 100).
    for (const [at, done] of [[0, 1], [50, 2], [99, 3], [100, 4], [150, 5], [160, 6]] as const) {
      t = at;
      report(done, 6, done * 10);
    }
    expect(seen).toEqual([[1, 6, 10], [4, 6, 40], [6, 6, 60]]);
  });
});
