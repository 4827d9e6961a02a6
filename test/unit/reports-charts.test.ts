// Every chart spec is valid Vega-Lite (checked against the schema vega-lite ships) and renders
// to SVG offline; failed cells are labelled, not drawn as zero-height bars.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, sep } from 'node:path';
import { Ajv } from 'ajv';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildCharts } from '../../reports/charts/index.ts';
import { renderSvg, svgToPng } from '../../reports/charts/render.ts';
import { scoreRows } from '../../reports/charts/scores.ts';
import { loadRun } from '../../reports/run.ts';
import { summarizeRun } from '../../reports/summary.ts';
import { FIXTURES_DIR } from '../fixtures/runs/generate.ts';

const summary = (name: string) => summarizeRun(loadRun(join(FIXTURES_DIR, name)).records);

// vega-lite's "exports" hide build/; locate the schema beside its resolved entry point.
function vegaLiteSchemaPath(): string {
  const entry = createRequire(import.meta.url).resolve('vega-lite');
  const root = entry.slice(0, entry.lastIndexOf(`${sep}node_modules${sep}vega-lite${sep}`) + `${sep}node_modules${sep}vega-lite${sep}`.length);
  return join(root, 'build', 'vega-lite-schema.json');
}

let validate: ReturnType<Ajv['compile']>;
beforeAll(() => {
  // The schema is draft-07 (its "$schema"); formats such as color-hex are Vega-Lite's own.
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false, logger: false });
  validate = ajv.compile(JSON.parse(readFileSync(vegaLiteSchemaPath(), 'utf8')));
});

describe('report charts', () => {
  const runs = [summary('sweep'), summary('nightly-base')];
  const charts = buildCharts(runs, 'acc');

  it('draws scores, score vs params, memory, throughput and the roofline', () => {
    expect(charts.map((c) => c.name)).toEqual(['scores', 'score-vs-params', 'memory', 'throughput', 'roofline']);
  });

  it('every spec validates against the Vega-Lite JSON schema', () => {
    for (const c of charts) {
      const ok = validate(c.spec);
      expect(ok ? [] : validate.errors?.slice(0, 3), c.name).toEqual([]);
    }
  });

  it('the schema check is not vacuous: a bad mark type fails it', () => {
    expect(validate({ ...charts[2]?.spec, mark: 'barr' })).toBe(false);
  });

  it('every spec renders to SVG offline, and to PNG', async () => {
    for (const c of charts) {
      const svg = await renderSvg(c.spec);
      expect(svg.startsWith('<svg'), c.name).toBe(true);
      expect(svg, c.name).toContain(c.spec.title as string);
    }
    const first = charts[0];
    if (!first) throw new Error('no charts built');
    const png = svgToPng(await renderSvg(first.spec));
    expect([...png.subarray(0, 4)]).toEqual([0x89, 0x50, 0x4e, 0x47]); // PNG signature
  });

  it('a failed cell is a "failed" label, not a bar of height zero', async () => {
    const rows = scoreRows([summary('sweep')], 'acc');
    const failed = rows.filter((r) => r.status === 'failed');
    // generate.ts: only llama-adapter-v1 on gsm8k failed.
    expect(failed).toEqual([{ run: 'sweep', task: 'gsm8k', config: 'tiny-llama-3.1 + llama-adapter-v1', metric: 'acc', status: 'failed', value: null, low: null, high: null }]);
    const scores = buildCharts([summary('sweep')], 'acc')[0];
    if (!scores) throw new Error('no scores chart');
    const svg = await renderSvg(scores.spec);
    expect(svg).toContain('>failed</text>');
    // 15 task x config cells, one failed: 14 bars, each a <path> in the "mark-rect" group.
    const bars = svg.match(/<g class="mark-rect role-mark[^"]*"[^>]*>(.*?)<\/g>/s)?.[1]?.match(/<path /g) ?? [];
    expect(bars).toHaveLength(14);
  });

  it('the same config in two runs gets two labels, so bars never stack into a sum', () => {
    const rows = scoreRows(runs, 'acc').filter((r) => r.task === 'piqa' && r.config.startsWith('tiny-llama-3.1 + lora'));
    expect(rows.map((r) => r.config)).toEqual(['tiny-llama-3.1 + lora [sweep]', 'tiny-llama-3.1 + lora [nightly-base]']);
  });
});
