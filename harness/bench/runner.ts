// `npm run bench:runner` (issue 4's benchmark): the ORT runner's own figures, measured in one run.
//   1. multiple-choice scoring with prefix sharing vs naive per-choice calls (HellaSwag and MMLU
//      anatomy, 4 choices each);
//   2. prefill and decode tokens/s of the tiny models and a random-weight model shaped like
//      llama-3.2-1b (fp32), beside the decode bound = measured bandwidth / weight bytes per token;
//   3. peak RSS of a process that loads the 1B-shaped model, against its weight bytes;
//   4. the scoring head: multiple-choice scoring with log p(target) computed in ORT's graph
//      (runners/ort/score-head.ts, the default) vs the float64 log-softmax of every row in JS.
// The tiny models run in this process; the 1B-shaped one in a child of its own (harness/bench/child.ts).
import { pathToFileURL } from 'node:url';
import { openOrtRunner, type OrtRunner } from '../../runners/ort/runner.ts';
import type { LoglikelihoodRequest } from '../../runners/types.ts';
import { llamaWeightBytes } from '../../runners/ort/llama-graph.ts';
import type { CliIO } from '../cli/command.ts';
import { printJson, printTable } from '../cli/output.ts';
import { runInChild, type ChildResult } from './child.ts';
import { bestLimits, fmt, loadAverage, limitsLine, machineLimits, machineLine, parseBenchArgs, runScript, SHARING_TASKS, taskQuestions } from './common.ts';
import { compareSharing, decodeWeightBytesPerToken, measureGeneration, type GenerationRates, type SharingComparison } from './measure.ts';
import { ensureRandomCheckpoint, randomModelConfig } from './random-checkpoint.ts';

export const TINY_BENCH_MODELS = ['tiny-llama-1', 'tiny-llama-2', 'tiny-llama-3', 'tiny-llama-4'] as const;
/** Issue 4's targets. */
export const SHARING_TARGET = 2;
export const RSS_TARGET = 1.3;
export const SHARING_TOLERANCE = 1e-5;

interface HeadRow {
  model: string;
  task: string;
  graph: SharingComparison;
  js: SharingComparison;
  /** Largest |logprob(graph) - logprob(js)| over the shared results, and is_greedy differences. */
  maxAbsDiff: number;
  greedyMismatches: number;
}

async function sharedResults(runner: OrtRunner, questions: readonly (readonly LoglikelihoodRequest[])[]): Promise<{ logprob: number; isGreedy: boolean }[]> {
  const out: { logprob: number; isGreedy: boolean }[] = [];
  for await (const r of runner.loglikelihood(questions.flat())) out.push(r);
  return out;
}

/** The faster of two timings of the same comparison (each way's fastest round kept). */
function fastest(a: SharingComparison | null, b: SharingComparison): SharingComparison {
  if (a === null) return b;
  const sharedSeconds = Math.min(a.sharedSeconds, b.sharedSeconds);
  const naiveSeconds = Math.min(a.naiveSeconds, b.naiveSeconds);
  return { ...b, sharedSeconds, naiveSeconds, speedup: naiveSeconds / sharedSeconds };
}

/**
 * The same questions through the ORT scoring head and through the float64 JS path, shared and naive.
 * Both runners are open at once and their rounds alternate (graph, js, graph, js, ...), each way's
 * fastest kept, so a neighbour's burst on a shared machine does not land on one side only; the first
 * pass of each (for the results) warms its sessions up.
 */
async function compareHeads(model: string, label: string, threads: number, tasks: readonly { task: string; questions: LoglikelihoodRequest[][] }[], rounds: number): Promise<HeadRow[]> {
  const graph = await openOrtRunner(model, { device: 'cpu', offline: true, threads, scoring: 'graph' });
  const js = await openOrtRunner(model, { device: 'cpu', offline: true, threads, scoring: 'js' });
  try {
    const rows: HeadRow[] = [];
    for (const t of tasks) {
      const a = await sharedResults(graph, t.questions);
      const b = await sharedResults(js, t.questions);
      let graphTiming: SharingComparison | null = null;
      let jsTiming: SharingComparison | null = null;
      for (let round = 0; round < rounds; round++) {
        graphTiming = fastest(graphTiming, await compareSharing(graph, t.questions, 1));
        jsTiming = fastest(jsTiming, await compareSharing(js, t.questions, 1));
      }
      rows.push({
        model: label,
        task: t.task,
        graph: graphTiming!,
        js: jsTiming!,
        maxAbsDiff: Math.max(...a.map((r, j) => Math.abs(r.logprob - b[j]!.logprob))),
        greedyMismatches: a.filter((r, j) => r.isGreedy !== b[j]!.isGreedy).length,
      });
    }
    return rows;
  } finally {
    await graph.close();
    await js.close();
  }
}

interface ThroughputRow {
  model: string;
  weightBytes: number;
  decodeBytesPerToken: number;
  rates: GenerationRates;
  boundTokensPerSecond: number;
}

export async function main(argv: readonly string[], io: CliIO): Promise<number> {
  const args = parseBenchArgs(argv, 'bench:runner');
  const started = performance.now();
  const log = (s: string) => io.err(`${s}\n`);
  const header = machineLine(args.threads);
  log(header);
  // Quick mode keeps the 1B model's widths and vocabulary but only 2 of its 16 layers.
  const bigLayers = args.quick ? 2 : undefined;
  const big = randomModelConfig(args.model, bigLayers);
  const bigLabel = `${args.model} random${bigLayers === undefined ? '' : ` (${bigLayers} layers)`}`;
  log(`writing/reusing the random-weight ${bigLabel} checkpoint...`);
  const bigDir = ensureRandomCheckpoint(args.model, { layers: bigLayers });

  log('measuring memory bandwidth...');
  const before = await machineLimits(args.quick);

  const gen = args.quick ? { promptWords: 32, newTokens: 9, reps: 1 } : { promptWords: 128, newTokens: 17, reps: 3 };
  const questions = async (n: number) => Promise.all(SHARING_TASKS.map(async (task) => ({ task, questions: await taskQuestions(task, n) })));
  const tinySharing = await questions(args.quick ? 6 : 12);
  const rows: ThroughputRow[] = [];
  const sharing: { model: string; task: string; result: SharingComparison }[] = [];
  const heads: HeadRow[] = [];
  for (const id of TINY_BENCH_MODELS) {
    log(`${id}: generation${id === 'tiny-llama-3' ? ' and multiple-choice scoring' : ''}...`);
    const runner = await openOrtRunner(id, { device: 'cpu', offline: true, threads: args.threads });
    try {
      const arch = runner.checkpoint.arch;
      const rates = await measureGeneration(runner, gen);
      const perToken = decodeWeightBytesPerToken(arch);
      rows.push({ model: id, weightBytes: llamaWeightBytes(arch), decodeBytesPerToken: perToken, rates, boundTokensPerSecond: 0 });
      if (id === 'tiny-llama-3') for (const t of tinySharing) sharing.push({ model: id, task: t.task, result: await compareSharing(runner, t.questions, args.quick ? 1 : 2) });
    } finally {
      await runner.close();
    }
  }

  log('scoring head vs float64 JS: tiny-llama-3, then the 1B shape cut to 2 layers (the same 128K x 2048 lm_head)...');
  heads.push(...(await compareHeads('tiny-llama-3', 'tiny-llama-3', args.threads, tinySharing, args.quick ? 2 : 3)));
  const headBig = `${args.model} random (2 layers)`;
  heads.push(...(await compareHeads(ensureRandomCheckpoint(args.model, { layers: 2 }), headBig, args.threads, await questions(args.quick ? 1 : 2), args.quick ? 2 : 3)));

  log(`${bigLabel}: loading in a child process, then generation and multiple-choice scoring...`);
  const child: ChildResult = await runInChild({
    backend: 'ort', model: bigDir, threads: args.threads, sharing: await questions(1), rounds: args.quick ? 1 : 2,
    ...(args.quick ? { promptWords: 32, newTokens: 5, reps: 1 } : { promptWords: 64, newTokens: 9, reps: 2 }),
  });
  const bigPerToken = decodeWeightBytesPerToken(big.arch);
  const bigWeights = llamaWeightBytes(big.arch);
  rows.push({ model: bigLabel, weightBytes: bigWeights, decodeBytesPerToken: bigPerToken, rates: child.generation, boundTokensPerSecond: 0 });
  log('measuring memory bandwidth again...');
  const after = await machineLimits(args.quick);
  const limits = bestLimits(before, after);
  for (const r of rows) r.boundTokensPerSecond = (limits.bandwidthGBs * 1e9) / r.decodeBytesPerToken;
  for (const t of child.sharing) sharing.push({ model: bigLabel, ...t });
  const elapsed = (performance.now() - started) / 1000;

  if (args.json) {
    printJson(io, { machine: header, limits, rows, sharing, heads, memory: { model: bigLabel, weightBytes: bigWeights, loadPeakRssBytes: child.loadPeakRssBytes, peakRssBytes: child.peakRssBytes, loadSeconds: child.loadSeconds }, elapsedSeconds: elapsed });
    return 0;
  }
  io.out(`${header}\n${limitsLine(before, after)}\n\n`);
  io.out(`Multiple-choice scoring, 4 choices: one prefill shared by the 4 continuations vs one loglikelihood call per choice (target >= ${SHARING_TARGET}x, |diff| <= ${SHARING_TOLERANCE})\n`);
  printTable(io, ['model', 'task', 'questions', 'requests', 'shared', 'naive', 'speed-up', 'max |diff|', 'greedy diffs', 'ok'],
    sharing.map(({ model, task, result: s }) => [model, task, s.questions, s.requests, fmt.seconds(s.sharedSeconds), fmt.seconds(s.naiveSeconds), fmt.ratio(s.speedup), s.maxAbsDiff.toExponential(1), s.greedyMismatches,
      s.speedup >= SHARING_TARGET && s.maxAbsDiff <= SHARING_TOLERANCE && s.greedyMismatches === 0 ? 'yes' : 'NO']));
  io.out(`\nScoring head: log p(target) and is_greedy in ORT's graph (float32 LogSoftmax, [rows, k] numbers to JS) vs the float64 log-softmax of every [vocab] row in JS (speed-up = js / graph)\n`);
  printTable(io, ['model', 'task', 'shared js', 'shared graph', 'speed-up', 'naive js', 'naive graph', 'speed-up', 'graph shared/naive', 'max |graph - js|', 'greedy diffs'],
    heads.map((h) => [h.model, h.task, fmt.seconds(h.js.sharedSeconds), fmt.seconds(h.graph.sharedSeconds), fmt.ratio(h.js.sharedSeconds / h.graph.sharedSeconds),
      fmt.seconds(h.js.naiveSeconds), fmt.seconds(h.graph.naiveSeconds), fmt.ratio(h.js.naiveSeconds / h.graph.naiveSeconds), fmt.ratio(h.graph.speedup), h.maxAbsDiff.toExponential(1), h.greedyMismatches]));
  io.out(`\nGreedy generation, fp32, ${args.threads} threads (prefill: one prompt; decode: single-token steps from the KV cache; fastest of ${gen.reps} for tiny models, of ${args.quick ? 1 : 2} for ${bigLabel})\n`);
  printTable(io, ['model', 'weights', 'prompt tok', 'prefill tok/s', 'decode steps', 'decode tok/s', 'weights read/token', 'decode bound tok/s', 'decode / bound'],
    rows.map((r) => [r.model, fmt.mib(r.weightBytes), r.rates.promptTokens, fmt.rate(r.rates.prefillTokensPerSecond), r.rates.decodeSteps, fmt.rate(r.rates.decodeTokensPerSecond),
      fmt.mib(r.decodeBytesPerToken), fmt.rate(r.boundTokensPerSecond), `${(100 * r.rates.decodeTokensPerSecond / r.boundTokensPerSecond).toFixed(1)}%`]));
  io.out(`\nPeak RSS of a child process that loads ${bigLabel} (fp32) (target <= ${RSS_TARGET}x weights)\n`);
  printTable(io, ['model', 'weights', 'load time', 'peak RSS after load', 'ratio', 'peak RSS after generation + scoring', 'ratio'],
    [[bigLabel, fmt.gib(bigWeights), fmt.seconds(child.loadSeconds), fmt.gib(child.loadPeakRssBytes), fmt.ratio(child.loadPeakRssBytes / bigWeights), fmt.gib(child.peakRssBytes), fmt.ratio(child.peakRssBytes / bigWeights)]]);
  io.out(`\nnotes: tiny models are overhead bound (their weights fit in cache), so their decode/bound is not a memory figure; tiny-llama-4's bound counts every expert. Whole run: ${elapsed.toFixed(0)} s; load average at the end ${loadAverage()}.\n`);
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await runScript(main);
