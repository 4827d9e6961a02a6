// `npm run bench:peers` (issue 9's benchmark): one random-weight model shaped like llama-3.2-1b in
// the ORT runner (fp32) and in llama.cpp through node-llama-cpp (GGUF F32 and F16; prebuilt
// binaries, build 'never', CPU, flash attention off), each in a child process of its own, with the
// same thread count, the same prompt token ids and the same generation length. Prefill and decode
// tokens/s are printed side by side and as ratios ORT / llama.cpp (>= 1: ORT at least as fast).
// Q8_0/Q4_K are not benched: our GGUF export writes F32 and F16 only.
import { pathToFileURL } from 'node:url';
import { llamaWeightBytes } from '../../runners/ort/llama-graph.ts';
import type { CliIO } from '../cli/command.ts';
import { printJson, printTable } from '../cli/output.ts';
import { runInChild, type ChildJob, type ChildResult } from './child.ts';
import { bestLimits, fmt, loadAverage, limitsLine, machineLimits, machineLine, parseBenchArgs, runScript } from './common.ts';
import { decodeWeightBytesPerToken } from './measure.ts';
import { ensureRandomCheckpoint, randomModelConfig } from './random-checkpoint.ts';

export interface PeerRow {
  label: string;
  bytesPerWeight: number;
  result: ChildResult;
}

/** ORT's rate over a peer's: above 1 means ORT is faster. */
export function speedRatio(ort: number, peer: number): number {
  return ort / peer;
}

export async function main(argv: readonly string[], io: CliIO): Promise<number> {
  const args = parseBenchArgs(argv, 'bench:peers');
  const started = performance.now();
  const log = (s: string) => io.err(`${s}\n`);
  const header = machineLine(args.threads);
  log(header);
  const layers = args.quick ? 2 : undefined;
  const { arch } = randomModelConfig(args.model, layers);
  const label = `${args.model} random${layers === undefined ? '' : ` (${layers} layers)`}`;
  log(`writing/reusing the random-weight ${label} checkpoint...`);
  const dir = ensureRandomCheckpoint(args.model, { layers });
  log('measuring memory bandwidth...');
  const before = await machineLimits(args.quick);

  const common = { model: dir, threads: args.threads, ...(args.quick ? { promptWords: 32, newTokens: 5, reps: 2 } : { promptWords: 64, newTokens: 9, reps: 3 }) };
  const jobs: { label: string; bytesPerWeight: number; job: ChildJob }[] = [
    { label: 'ORT fp32', bytesPerWeight: 4, job: { ...common, backend: 'ort' } },
    { label: 'llama.cpp F32', bytesPerWeight: 4, job: { ...common, backend: 'llamacpp', dtype: 'f32' } },
    { label: 'llama.cpp F16', bytesPerWeight: 2, job: { ...common, backend: 'llamacpp', dtype: 'f16' } },
  ];
  const rows: PeerRow[] = [];
  for (const j of jobs) {
    log(`${label}, ${j.label}: loading in a child process (llama.cpp: GGUF exported once, then cached), then generation...`);
    rows.push({ label: j.label, bytesPerWeight: j.bytesPerWeight, result: await runInChild(j.job) });
  }
  log('measuring memory bandwidth again...');
  const after = await machineLimits(args.quick);
  const limits = bestLimits(before, after);
  const elapsed = (performance.now() - started) / 1000;
  if (args.json) {
    printJson(io, { machine: header, model: label, limits, rows, elapsedSeconds: elapsed });
    return 0;
  }
  const ort = rows[0]!.result.generation;
  io.out(`${header}\n${label}: ${fmt.gib(llamaWeightBytes(arch))} of fp32 weights; ${limitsLine(before, after)}\n`);
  io.out(`prompt ${ort.promptTokens} tokens (the same ids in every backend), then ${ort.decodeSteps} single-token decode steps, fastest of ${ort.samples.length} runs each; ratios are ORT fp32 / row (> 1: ORT faster)\n`);
  printTable(io, ['backend', 'load', 'prefill tok/s', 'decode tok/s', 'decode bound tok/s', 'ORT/row prefill', 'ORT/row decode', 'peak RSS'],
    rows.map((r) => {
      const g = r.result.generation;
      const bound = (limits.bandwidthGBs * 1e9) / decodeWeightBytesPerToken(arch, r.bytesPerWeight);
      return [r.label, fmt.seconds(r.result.loadSeconds), fmt.rate(g.prefillTokensPerSecond), fmt.rate(g.decodeTokensPerSecond), fmt.rate(bound),
        fmt.ratio(speedRatio(ort.prefillTokensPerSecond, g.prefillTokensPerSecond)), fmt.ratio(speedRatio(ort.decodeTokensPerSecond, g.decodeTokensPerSecond)), fmt.gib(r.result.peakRssBytes)];
    }));
  io.out(`\nnotes: llama.cpp maps the GGUF file, so its RSS counts the pages it touched; llama.cpp's load time includes the one-time GGUF export when no cached file exists. Whole run: ${elapsed.toFixed(0)} s; load average at the end ${loadAverage()}.\n`);
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await runScript(main);
