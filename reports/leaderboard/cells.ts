// Table cells for scores: "0.7312 ± 0.0140" sorted by value; FAILED and "–" sort last.
import { fmtBytes, fmtCount, fmtScore } from '../markdown.ts';
import type { TaskStatus } from '../summary.ts';
import type { Cell } from './html.ts';

export function scoreCell(s: TaskStatus, preferred: string): Cell {
  if (s.status === 'failed') return { text: 'FAILED', sort: null, className: 'failed', title: s.message };
  if (s.status === 'missing') return { text: '–', sort: null, className: 'missing' };
  const metric = s.score.metric === preferred ? '' : ` (${s.score.metric})`;
  return { text: `${fmtScore(s.score.value, s.score.stderr)}${metric}`, sort: s.score.value, title: `${s.score.metric}, n = ${s.score.n}` };
}

export function suiteCell(values: number[], failed: number, total: number): Cell {
  if (failed > 0) return { text: `FAILED (${failed} of ${total} tasks)`, sort: null, className: 'failed' };
  if (values.length === 0) return { text: '–', sort: null, className: 'missing' };
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  return { text: mean.toFixed(4), sort: mean, title: `mean of ${values.length} task scores` };
}

export const countCell = (n: number | null): Cell => ({ text: fmtCount(n), sort: n });
export const bytesCell = (n: number | null): Cell => ({ text: fmtBytes(n), sort: n });
