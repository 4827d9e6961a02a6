// `report`: run dirs -> a directory of files. The only I/O in reports besides reading runs.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonAtomic } from '../results/store.ts';
import { buildCharts } from './charts/index.ts';
import { renderSvg, svgToPng } from './charts/render.ts';
import { resultsCsv, samplesCsv } from './csv.ts';
import { loadRun } from './run.ts';
import { summarizeRun } from './summary.ts';
import { summaryMarkdown } from './summary-md.ts';
import type { RunSummary } from './summary-types.ts';

export interface ReportOptions {
  metric: string;
  /** PNG next to each SVG (resvg); off saves ~50 ms a chart. */
  png: boolean;
}

export interface ReportOutput {
  files: string[];
  summaries: RunSummary[];
}

export async function writeReport(runDirs: readonly string[], outDir: string, options: ReportOptions): Promise<ReportOutput> {
  const runs = runDirs.map(loadRun);
  const summaries = runs.map((r) => summarizeRun(r.records, r.problems));
  mkdirSync(outDir, { recursive: true });
  const files: string[] = [];
  const write = (name: string, data: string | Buffer) => {
    writeFileSync(join(outDir, name), data);
    files.push(name);
  };
  const charts = buildCharts(summaries, options.metric);
  for (const chart of charts) {
    write(`${chart.name}.vl.json`, `${JSON.stringify(chart.spec, null, 2)}\n`);
    const svg = await renderSvg(chart.spec);
    write(`${chart.name}.svg`, svg);
    if (options.png) write(`${chart.name}.png`, svgToPng(svg));
  }
  write('results.csv', resultsCsv(summaries));
  write('samples.csv', samplesCsv(runs.flatMap((r) => r.records)));
  write('summary.md', summaryMarkdown(summaries, options.metric, charts.map((c) => c.name)));
  // One run: its summary as is (a valid regress baseline); several: an array of them.
  writeJsonAtomic(join(outDir, 'results.json'), summaries.length === 1 ? summaries[0] : summaries);
  files.push('results.json');
  return { files, summaries };
}
