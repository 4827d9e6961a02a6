// The nightly gate. A task regresses when its score drops by more than maxDrop AND the drop is
// significant at alpha: a small real drop and a large noisy one both pass, so the gate does not
// flap on tiny samples. A task that failed or vanished in the current run fails the gate too:
// a crash must not read as "no regression".
import { higherIsBetter, primaryScore, tasksOf } from './metric-choice.ts';
import { assertSameData, pairConfigs, sampleValues, type RunView } from './pairing.ts';
import { pairedTest } from './paired-test.ts';
import { zTestP } from './stats/normal.ts';
import { taskStatus } from './summary.ts';
import type { ConfigSummary } from './summary-types.ts';

export interface RegressOptions {
  maxDrop: number;
  alpha: number;
  metric: string;
  resamples?: number;
  seed?: number;
}

export type VerdictStatus = 'pass' | 'regression' | 'failed' | 'missing';

export interface TaskVerdict {
  config: string;
  task: string;
  metric: string;
  baseline: number | null;
  current: number | null;
  /** Worsening in metric units (positive = worse, whichever way the metric points). */
  drop: number | null;
  pValue: number | null;
  test: 'mcnemar' | 'bootstrap' | 'z' | null;
  status: VerdictStatus;
  reason: string;
}

export interface RegressResult {
  baseline: string;
  current: string;
  options: RegressOptions;
  verdicts: TaskVerdict[];
  regressed: boolean;
}

const fmt = (x: number) => x.toFixed(4);

function judge(base: RunView, cur: RunView, cb: ConfigSummary, cc: ConfigSummary | null, task: string, o: RegressOptions): TaskVerdict {
  const sb = taskStatus(cb, task, primaryScore(cb.scores, task, o.metric));
  const sc = cc ? taskStatus(cc, task, primaryScore(cc.scores, task, o.metric)) : { status: 'missing' as const };
  const metric = sb.status === 'ok' ? sb.score.metric : sc.status === 'ok' ? sc.score.metric : o.metric;
  const v: TaskVerdict = {
    config: cc?.key ?? cb.key, task, metric,
    baseline: sb.status === 'ok' ? sb.score.value : null,
    current: sc.status === 'ok' ? sc.score.value : null,
    drop: null, pValue: null, test: null, status: 'pass', reason: '',
  };
  if (sc.status === 'failed') return { ...v, status: 'failed', reason: `failed in current run: ${sc.message}` };
  if (sc.status === 'missing') {
    return sb.status === 'ok' ? { ...v, status: 'missing', reason: 'scored in baseline, absent from current run' } : { ...v, reason: 'in neither run' };
  }
  if (sb.status !== 'ok') return { ...v, reason: `baseline ${sb.status}; nothing to compare against` };
  const sign = higherIsBetter(metric) ? 1 : -1;
  const drop = sign * (sb.score.value - sc.score.value);
  let pValue: number | null;
  let test: TaskVerdict['test'];
  const paired = base.records && cur.records && cc
    ? pairedTest(sampleValues(base.records, cb, task, metric), sampleValues(cur.records, cc, task, metric), o)
    : null;
  if (paired) {
    pValue = paired.pValue;
    test = paired.test;
  } else {
    pValue = zTestP(sb.score.value, sb.score.stderr, sc.score.value, sc.score.stderr);
    test = pValue === null ? null : 'z';
  }
  const out = { ...v, drop, pValue, test };
  if (drop <= o.maxDrop) return { ...out, reason: `drop ${fmt(drop)} within max-drop ${o.maxDrop}` };
  // Without items or stderr nothing can show the drop is noise, so a gate must fail it.
  if (pValue === null) return { ...out, status: 'regression', reason: `drop ${fmt(drop)} > ${o.maxDrop}; no samples or stderr to test significance` };
  if (pValue < o.alpha) return { ...out, status: 'regression', reason: `drop ${fmt(drop)} > ${o.maxDrop}, p=${pValue.toPrecision(3)} < ${o.alpha} (${test})` };
  return { ...out, reason: `drop ${fmt(drop)} > ${o.maxDrop} but not significant: p=${pValue.toPrecision(3)} >= ${o.alpha} (${test})` };
}

export function regress(baseline: RunView, current: RunView, options: RegressOptions): RegressResult {
  assertSameData(baseline, current);
  const { pairs, onlyA } = pairConfigs(baseline, current);
  const verdicts: TaskVerdict[] = [];
  const judgeConfig = (cb: ConfigSummary, cc: ConfigSummary | null) => {
    const tasks = tasksOf([...cb.scores, ...(cc?.scores ?? []), ...cb.failures, ...(cc?.failures ?? [])]);
    for (const task of tasks) verdicts.push(judge(baseline, current, cb, cc, task, options));
  };
  for (const [cb, cc] of pairs) judgeConfig(cb, cc);
  for (const cb of onlyA) judgeConfig(cb, null);
  return {
    baseline: baseline.source,
    current: current.source,
    options,
    verdicts,
    regressed: verdicts.some((v) => v.status !== 'pass'),
  };
}
