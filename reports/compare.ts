// Two runs on the same items -> per task: the difference, a paired test, the items that flipped.
import { primaryScore, tasksOf } from './metric-choice.ts';
import { assertSameData, pairConfigs, sampleValues, type RunView } from './pairing.ts';
import { pairedTest, type PairedTest } from './paired-test.ts';
import { taskStatus } from './summary.ts';
import type { ConfigSummary } from './summary-types.ts';

export interface CompareOptions {
  /** Preferred metric (a task without it is compared on its own first metric). */
  metric: string;
  alpha: number;
  resamples?: number;
  seed?: number;
}

export interface TaskComparison {
  task: string;
  metric: string;
  /** Scores as the runs report them; null where the task failed or is absent. */
  a: number | null;
  b: number | null;
  /** b - a; null unless both scored. */
  diff: number | null;
  status: 'ok' | 'failed' | 'missing';
  /** Why the task could not be compared, naming the run. */
  note: string | null;
  test: PairedTest | null;
  significant: boolean;
}

export interface ConfigComparison {
  a: string;
  b: string;
  tasks: TaskComparison[];
}

export interface CompareResult {
  a: string;
  b: string;
  alpha: number;
  configs: ConfigComparison[];
}

function compareTask(a: RunView, b: RunView, ca: ConfigSummary, cb: ConfigSummary, task: string, o: CompareOptions): TaskComparison {
  const sa = taskStatus(ca, task, primaryScore(ca.scores, task, o.metric));
  const sb = taskStatus(cb, task, primaryScore(cb.scores, task, o.metric));
  const metric = (sa.status === 'ok' ? sa.score.metric : sb.status === 'ok' ? sb.score.metric : o.metric);
  const base = { task, metric, a: sa.status === 'ok' ? sa.score.value : null, b: sb.status === 'ok' ? sb.score.value : null };
  if (sa.status !== 'ok' || sb.status !== 'ok') {
    const [side, s] = sa.status !== 'ok' ? [a.source, sa] : [b.source, sb];
    const status = s.status === 'failed' ? 'failed' : 'missing';
    const note = s.status === 'failed' ? `failed in ${side}: ${s.message}` : `not run in ${side}`;
    return { ...base, diff: null, status, note, test: null, significant: false };
  }
  const test = a.records && b.records
    ? pairedTest(sampleValues(a.records, ca, task, metric), sampleValues(b.records, cb, task, metric), o)
    : null;
  return {
    ...base,
    diff: sb.score.value - sa.score.value,
    status: 'ok',
    note: test ? null : 'no per-item samples in both runs: no paired test',
    test,
    significant: test !== null && test.pValue < o.alpha,
  };
}

export function compareRuns(a: RunView, b: RunView, options: CompareOptions): CompareResult {
  assertSameData(a, b);
  const { pairs } = pairConfigs(a, b);
  return {
    a: a.source,
    b: b.source,
    alpha: options.alpha,
    configs: pairs.map(([ca, cb]) => ({
      a: ca.key,
      b: cb.key,
      tasks: tasksOf([...ca.scores, ...cb.scores, ...ca.failures, ...cb.failures])
        .map((task) => compareTask(a, b, ca, cb, task, options)),
    })),
  };
}
