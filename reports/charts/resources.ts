// Memory peak by model x method, and throughput (prefill and decode tokens/s) per config.
import type { TopLevelSpec } from 'vega-lite';
import type { RunSummary } from '../summary-types.ts';
import { configLabeler, VEGA_LITE_SCHEMA } from './spec.ts';

export function memoryRows(runs: readonly RunSummary[]) {
  const label = configLabeler(runs);
  return runs.flatMap((r) => r.configs.flatMap((c) => (c.peak_rss_bytes === null ? [] : [{
    model: c.model, method: label(r.run_id, c, c.peft ?? 'base'), config: label(r.run_id, c),
    peak_rss_gib: c.peak_rss_bytes / 2 ** 30,
    device_gib: c.device_bytes === null ? null : c.device_bytes / 2 ** 30,
  }])));
}

export function memoryChart(rows: ReturnType<typeof memoryRows>): TopLevelSpec {
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: 'Peak memory (process RSS) by model and PEFT method',
    data: { values: rows },
    width: { step: 22 },
    height: 240,
    mark: 'bar',
    encoding: {
      x: { field: 'model', type: 'nominal', axis: { labelAngle: -30 } },
      xOffset: { field: 'method', type: 'nominal' },
      y: { field: 'peak_rss_gib', type: 'quantitative', title: 'peak RSS (GiB)' },
      color: { field: 'method', type: 'nominal', title: 'PEFT method' },
      tooltip: [{ field: 'config' }, { field: 'peak_rss_gib', format: '.3f' }, { field: 'device_gib', format: '.3f' }],
    },
  } as TopLevelSpec;
}

export function throughputRows(runs: readonly RunSummary[]) {
  const label = configLabeler(runs);
  return runs.flatMap((r) => r.configs.flatMap((c) => {
    const config = label(r.run_id, c);
    const rows: { config: string; phase: string; tokens_per_s: number }[] = [];
    if (c.prefill_tokens_per_s !== null) rows.push({ config, phase: 'prefill', tokens_per_s: c.prefill_tokens_per_s });
    if (c.decode_tokens_per_s !== null) rows.push({ config, phase: 'decode', tokens_per_s: c.decode_tokens_per_s });
    return rows;
  }));
}

export function throughputChart(rows: ReturnType<typeof throughputRows>): TopLevelSpec {
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: 'Throughput (tokens/s; slowest cell of each config)',
    data: { values: rows },
    width: { step: 22 },
    height: 240,
    mark: 'bar',
    encoding: {
      x: { field: 'config', type: 'nominal', axis: { labelAngle: -30 }, title: 'model + PEFT' },
      xOffset: { field: 'phase', type: 'nominal' },
      y: { field: 'tokens_per_s', type: 'quantitative', title: 'tokens/s' },
      color: { field: 'phase', type: 'nominal' },
      tooltip: [{ field: 'config' }, { field: 'phase' }, { field: 'tokens_per_s', format: ',.1f' }],
    },
  } as TopLevelSpec;
}
