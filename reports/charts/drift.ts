// Drift beside accuracy: each drift measurement's mean KL (±1 stderr) against the config's score
// on each task, one point per (measurement, task). A config with drift but no scores still shows,
// on the "no score" row, so a drift-only run draws a chart too.
import type { TopLevelSpec } from 'vega-lite';
import { primaryScore, tasksOf } from '../metric-choice.ts';
import { taskStatus } from '../summary.ts';
import type { RunSummary } from '../summary-types.ts';
import { configLabeler, VEGA_LITE_SCHEMA } from './spec.ts';

export interface DriftPoint {
  run: string;
  config: string;
  against: string;
  task: string;
  kl_mean: number;
  kl_low: number;
  kl_high: number;
  top1_agreement: number;
  ppl_ratio: number;
  /** The config's primary score on `task`; null when it has none. */
  score: number | null;
}

export function driftPoints(runs: readonly RunSummary[], metric: string): DriftPoint[] {
  const label = configLabeler(runs);
  return runs.flatMap((run) => (run.drift ?? []).flatMap((d): DriftPoint[] => {
    const c = run.configs.find((x) => x.key === d.key);
    const se = d.kl_stderr ?? 0;
    const base = {
      run: run.run_id, config: c ? label(run.run_id, c) : d.key, against: `${d.against} (${d.backend})`,
      kl_mean: d.kl_mean, kl_low: Math.max(0, d.kl_mean - se), kl_high: d.kl_mean + se, top1_agreement: d.top1_agreement, ppl_ratio: d.ppl_ratio,
    };
    const scored = c === undefined ? [] : tasksOf(c.scores).flatMap((task): DriftPoint[] => {
      const s = taskStatus(c, task, primaryScore(c.scores, task, metric));
      return s.status === 'ok' ? [{ ...base, task, score: s.score.value }] : [];
    });
    return scored.length > 0 ? scored : [{ ...base, task: 'no score', score: null }];
  }));
}

export function driftChart(points: readonly DriftPoint[]): TopLevelSpec {
  const y = { field: 'task', type: 'nominal', title: 'task (score in tooltip)' } as const;
  const color = { field: 'config', type: 'nominal', title: 'model + PEFT', legend: { labelLimit: 320 } } as const;
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: 'Drift beside accuracy: mean KL per token (±1 stderr) of each config against its reference',
    data: { values: points.map((p) => ({ ...p })) },
    width: 420,
    height: { step: 22 },
    encoding: { y, yOffset: { field: 'config', type: 'nominal' }, color },
    layer: [
      {
        mark: { type: 'point', filled: true, size: 60 },
        encoding: {
          x: { field: 'kl_mean', type: 'quantitative', title: 'mean KL (nats / token)' },
          shape: { field: 'against', type: 'nominal', title: 'against (backend)' },
          tooltip: [{ field: 'config' }, { field: 'against' }, { field: 'task' }, { field: 'score', format: '.4f' },
            { field: 'kl_mean', format: '.3e' }, { field: 'top1_agreement', format: '.4f' }, { field: 'ppl_ratio', format: '.4f' }, { field: 'run' }],
        },
      },
      { mark: { type: 'errorbar', ticks: true }, encoding: { x: { field: 'kl_low', type: 'quantitative', title: 'mean KL (nats / token)' }, x2: { field: 'kl_high' } } },
    ],
  } as TopLevelSpec;
}
