// Mean score vs trainable parameters (log x), one colour per LLaMA version: the PEFT trade-off
// in one picture. The mean is over the tasks the config scored; configs with a failed task are
// drawn hollow and say so in the tooltip rather than dropping out or averaging in a zero.
import type { TopLevelSpec } from 'vega-lite';
import { primaryScore, tasksOf } from '../metric-choice.ts';
import { taskStatus } from '../summary.ts';
import type { RunSummary } from '../summary-types.ts';
import { configLabeler, VEGA_LITE_SCHEMA } from './spec.ts';

export interface ParamsPoint {
  config: string;
  version: string;
  method: string;
  trainable_params: number;
  mean_score: number;
  tasks_scored: number;
  tasks_failed: number;
  complete: string;
}

export function paramsPoints(runs: readonly RunSummary[], metric: string): ParamsPoint[] {
  const out: ParamsPoint[] = [];
  const label = configLabeler(runs);
  for (const run of runs) {
    for (const c of run.configs) {
      // A log axis cannot place 0 trainable parameters (a frozen base model).
      if (c.trainable_params === null || c.trainable_params <= 0) continue;
      const statuses = tasksOf([...c.scores, ...c.failures]).map((t) => taskStatus(c, t, primaryScore(c.scores, t, metric)));
      const ok = statuses.flatMap((s) => (s.status === 'ok' ? [s.score.value] : []));
      const failed = statuses.filter((s) => s.status === 'failed').length;
      if (ok.length === 0) continue;
      out.push({
        config: label(run.run_id, c), version: c.version ?? 'unknown', method: c.peft ?? 'base',
        trainable_params: c.trainable_params, mean_score: ok.reduce((s, x) => s + x, 0) / ok.length,
        tasks_scored: ok.length, tasks_failed: failed, complete: failed === 0 ? 'all tasks scored' : 'some tasks failed',
      });
    }
  }
  return out;
}

export function paramsChart(points: readonly ParamsPoint[]): TopLevelSpec {
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: 'Mean score vs trainable parameters',
    data: { values: points.map((p) => ({ ...p })) },
    width: 420,
    height: 260,
    mark: { type: 'point', size: 90, strokeWidth: 2 },
    encoding: {
      x: { field: 'trainable_params', type: 'quantitative', scale: { type: 'log' }, title: 'trainable parameters (log)', axis: { format: '~s' } },
      y: { field: 'mean_score', type: 'quantitative', title: 'mean score over scored tasks' },
      color: { field: 'version', type: 'nominal', title: 'LLaMA version' },
      shape: { field: 'method', type: 'nominal', title: 'PEFT method' },
      fill: { condition: { test: 'datum.tasks_failed === 0', field: 'version', type: 'nominal' }, value: 'transparent' },
      tooltip: [{ field: 'config' }, { field: 'trainable_params', format: ',' }, { field: 'mean_score', format: '.4f' }, { field: 'tasks_scored' }, { field: 'tasks_failed' }],
    },
  } as TopLevelSpec;
}
