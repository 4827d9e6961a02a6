// Every chart a report or the leaderboard draws, from run summaries. Charts with no data are
// left out rather than drawn empty.
import type { RunSummary } from '../summary-types.ts';
import { driftChart, driftPoints } from './drift.ts';
import { paramsChart, paramsPoints } from './params.ts';
import { memoryChart, memoryRows, throughputChart, throughputRows } from './resources.ts';
import { rooflineChart } from './roofline.ts';
import { scoreRows, scoresChart } from './scores.ts';
import type { NamedChart } from './spec.ts';

export function buildCharts(runs: readonly RunSummary[], metric: string): NamedChart[] {
  const charts: NamedChart[] = [];
  const scores = scoreRows(runs, metric);
  if (scores.length > 0) charts.push({ name: 'scores', title: 'Scores by task and method', spec: scoresChart(scores) });
  const points = paramsPoints(runs, metric);
  if (points.length > 0) charts.push({ name: 'score-vs-params', title: 'Score vs trainable parameters', spec: paramsChart(points) });
  const memory = memoryRows(runs);
  if (memory.length > 0) charts.push({ name: 'memory', title: 'Peak memory', spec: memoryChart(memory) });
  const tput = throughputRows(runs);
  if (tput.length > 0) charts.push({ name: 'throughput', title: 'Throughput', spec: throughputChart(tput) });
  const drift = driftPoints(runs, metric);
  if (drift.length > 0) charts.push({ name: 'drift', title: 'Drift beside accuracy', spec: driftChart(drift) });
  const roof = rooflineChart(runs.flatMap((r) => r.kernels));
  if (roof) charts.push({ name: 'roofline', title: 'Kernel roofline', spec: roof });
  return charts;
}
