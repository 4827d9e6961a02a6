// A trend as a Vega-Lite line chart: the metric per run over time with a ±1 stderr band (the
// same error convention as the report's score bars). Data is inline so the file renders offline.
import type { TopLevelSpec } from 'vega-lite';
import { configLabel, VEGA_LITE_SCHEMA } from '../../reports/charts/spec.ts';
import type { TrendResult } from './queries.ts';

export function trendChart(trend: TrendResult): TopLevelSpec {
  const values = trend.points.map((p) => {
    const se = p.stderr ?? 0;
    return { run_id: p.run_id, time: p.time, value: p.value, stderr: p.stderr, lo: p.value - se, hi: p.value + se, n: p.n };
  });
  const x = { field: 'time', type: 'temporal', title: 'run time (UTC)' } as const;
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: `${trend.task} ${trend.metric} over time: ${configLabel(trend.model, trend.peft)} (band: ±1 stderr)`,
    width: 600,
    height: 300,
    data: { values },
    layer: [
      {
        mark: { type: 'errorband', opacity: 0.25 },
        encoding: { x, y: { field: 'lo', type: 'quantitative', title: trend.metric }, y2: { field: 'hi' } },
      },
      {
        mark: { type: 'line', point: true },
        encoding: {
          x,
          y: { field: 'value', type: 'quantitative', title: trend.metric },
          tooltip: [{ field: 'run_id' }, { field: 'time', type: 'temporal' }, { field: 'value', format: '.4f' }, { field: 'stderr', format: '.4f' }, { field: 'n' }],
        },
      },
    ],
  };
}
