// Scores by task x config: grouped bars with ±1 stderr error bars. A failed task gets a
// "failed" label at the axis instead of a bar, so it can never be read as a score of zero.
import type { TopLevelSpec } from 'vega-lite';
import { primaryScore, tasksOf } from '../metric-choice.ts';
import { taskStatus } from '../summary.ts';
import type { RunSummary } from '../summary-types.ts';
import { configLabeler, VEGA_LITE_SCHEMA } from './spec.ts';

export interface ScoreRow {
  run: string;
  task: string;
  config: string;
  metric: string;
  status: 'ok' | 'failed';
  value: number | null;
  low: number | null;
  high: number | null;
}

export function scoreRows(runs: readonly RunSummary[], metric: string): ScoreRow[] {
  const rows: ScoreRow[] = [];
  const label = configLabeler(runs);
  for (const run of runs) {
    for (const c of run.configs) {
      for (const task of tasksOf([...c.scores, ...c.failures])) {
        const s = taskStatus(c, task, primaryScore(c.scores, task, metric));
        const config = label(run.run_id, c);
        if (s.status === 'ok') {
          const se = s.score.stderr ?? 0;
          rows.push({ run: run.run_id, task, config, metric: s.score.metric, status: 'ok', value: s.score.value, low: s.score.value - se, high: s.score.value + se });
        } else if (s.status === 'failed') {
          rows.push({ run: run.run_id, task, config, metric, status: 'failed', value: null, low: null, high: null });
        }
      }
    }
  }
  return rows;
}

export function scoresChart(rows: readonly ScoreRow[]): TopLevelSpec {
  const x = { field: 'task', type: 'nominal', title: 'task', axis: { labelAngle: -30 } } as const;
  const xOffset = { field: 'config', type: 'nominal' } as const;
  const color = { field: 'config', type: 'nominal', title: 'model + PEFT', legend: { labelLimit: 320 } } as const;
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: 'Score by task and method (±1 stderr; "failed" marks a failed cell)',
    data: { values: rows.map((r) => ({ ...r })) },
    width: { step: 18 },
    height: 260,
    encoding: { x, xOffset },
    layer: [
      {
        transform: [{ filter: "datum.status === 'ok'" }],
        mark: 'bar',
        encoding: {
          y: { field: 'value', type: 'quantitative', title: 'score' },
          color,
          tooltip: [{ field: 'task' }, { field: 'config' }, { field: 'metric' }, { field: 'value', format: '.4f' }, { field: 'run' }],
        },
      },
      {
        transform: [{ filter: "datum.status === 'ok'" }],
        mark: { type: 'errorbar', ticks: true },
        encoding: { y: { field: 'low', type: 'quantitative', title: 'score' }, y2: { field: 'high' } },
      },
      {
        transform: [{ filter: "datum.status === 'failed'" }],
        mark: { type: 'text', angle: 270, align: 'left', dx: 0, color: '#c62828', fontWeight: 'bold' },
        encoding: { y: { datum: 0, type: 'quantitative' }, text: { value: 'failed' }, tooltip: [{ field: 'task' }, { field: 'config' }, { field: 'status' }] },
      },
    ],
  } as TopLevelSpec;
}
