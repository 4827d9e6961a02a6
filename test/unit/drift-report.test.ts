// Drift in reports: summarizeRun keeps drift records under their config, summary.md shows them
// beside that config's scores, and the drift chart renders offline. Expected figures are the ones
// written into the records below.
import { describe, expect, it } from 'vitest';
import { buildCharts } from '../../reports/charts/index.ts';
import { renderSvg } from '../../reports/charts/render.ts';
import { summaryMarkdown } from '../../reports/summary-md.ts';
import { summarizeRun } from '../../reports/summary.ts';
import { RunSummarySchema } from '../../reports/summary-types.ts';
import { parseRecord, type RunRecord } from '../../results/schema.ts';

const common = { run_id: 'r1', time: '2026-11-20T03:00:00.000Z' };
const drift = (cell: string, peft: string | null, against: string, kl: number, extra: Record<string, unknown> = {}) => parseRecord({
  kind: 'drift', ...common, cell_id: cell, model: 'tiny-llama-2', peft, against, backend: 'reference', data: 'boolq', n_tokens: 120,
  kl_mean: kl, kl_stderr: kl / 10, kl_median: kl / 2, kl_p99: kl * 4, kl_max: kl * 6, top1_agreement: 0.9, top1_stderr: 0.02,
  ppl_base: 20, ppl_adapted: 21, ppl_ratio: 1.05, ppl_ratio_stderr: 0.01, delta_p_rms: 0.01, ...extra,
});
const records: RunRecord[] = [
  parseRecord({ kind: 'metric', ...common, cell_id: 'tiny-llama-2/lora/boolq/abc', task: 'boolq', metric: 'acc', value: 0.625, stderr: 0.05, n: 100, model: 'tiny-llama-2', peft: 'lora' }),
  drift('tiny-llama-2/lora/drift', 'lora', 'base', 0.0025),
  // A repeat of the same measurement: the last record wins.
  drift('tiny-llama-2/lora/drift', 'lora', 'base', 0.003),
  drift('tiny-llama-2/base/drift', null, 'nf4', 1.5e-4, { kl_stderr: null, top1_stderr: null, ppl_ratio_stderr: null }),
];

describe('drift in reports', () => {
  const summary = summarizeRun(records);

  it('keeps one row per (config, against, backend, text) under the config key, and survives results.json', () => {
    expect(summary.drift?.map((d) => [d.key, d.against, d.kl_mean])).toEqual([['tiny-llama-2/lora', 'base', 0.003], ['tiny-llama-2/base', 'nf4', 1.5e-4]]);
    // The drift-only base config appears as a config (with no scores), beside the LoRA one.
    expect(summary.configs.map((c) => c.key).sort()).toEqual(['tiny-llama-2/base', 'tiny-llama-2/lora']);
    expect(RunSummarySchema.parse(JSON.parse(JSON.stringify(summary)))).toEqual(summary);
    // A results.json from before drift existed still parses.
    const { drift: _, ...old } = summary;
    expect(RunSummarySchema.safeParse(old).success).toBe(true);
  });

  it('summary.md puts each drift row beside the config scores', () => {
    const md = summaryMarkdown([summary], 'acc', []);
    expect(md).toContain('### Drift: KL(against || config) per token, beside the scores');
    // 0.003 -> "3.00e-3", stderr 0.0003 -> "3.00e-4"; p99 = 4 x, max = 6 x; boolq acc 0.625.
    expect(md).toContain('| tiny-llama-2 + lora | base | reference | boolq | 120 | 3.00e-3 ± 3.00e-4 | 1.20e-2 | 1.80e-2 | 0.9000 ± 0.0200 | 1.0500 ± 0.0100 | boolq 0.6250 |');
    // No stderr below 11 positions: the value alone, never "± 0".
    expect(md).toContain('| tiny-llama-2 (base) | nf4 | reference | boolq | 120 | 1.50e-4 | 6.00e-4 | 9.00e-4 | 0.9000 | 1.0500 | – |');
  });

  it('draws a drift chart, one point per measurement and scored task, that renders to SVG', async () => {
    const chart = buildCharts([summary], 'acc').find((c) => c.name === 'drift');
    expect(chart).toBeDefined();
    const values = (chart!.spec as { data: { values: { config: string; task: string; kl_mean: number; score: number | null }[] } }).data.values;
    expect(values.map((v) => [v.config, v.task, v.kl_mean, v.score])).toEqual([
      ['tiny-llama-2 + lora', 'boolq', 0.003, 0.625],
      ['tiny-llama-2 (base)', 'no score', 1.5e-4, null],
    ]);
    expect(await renderSvg(chart!.spec)).toContain('<svg');
  });

  it('no drift records: no drift table and no drift chart', () => {
    const plain = summarizeRun(records.filter((r) => r.kind !== 'drift'));
    expect(plain.drift).toEqual([]);
    expect(summaryMarkdown([plain], 'acc', [])).not.toContain('### Drift');
    expect(buildCharts([plain], 'acc').map((c) => c.name)).not.toContain('drift');
  });
});
