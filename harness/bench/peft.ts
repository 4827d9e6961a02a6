// `npm run bench:peft` (issue 5's benchmark): what PEFT costs at inference in the ORT runner, on a
// random-weight model shaped like a zoo model (harness/bench/random-checkpoint.ts):
//   1. unmerged LoRA (side branches in the graph, adapters swappable on one session) vs the same
//      adapter merged into the weights: decode tokens/s ratio;
//   2. NF4 base weights (QLoRA: MatMulBnb4 on bitsandbytes-packed bytes, runners/ort/llama-peft.ts)
//      vs fp32 base weights under the same unmerged LoRA: tokens/s ratio and peak RSS ratio (issue 5's
//      target: NF4 peak RSS <= 0.35x of fp32), beside the plain fp32 model without any PEFT plan.
// Each variant loads in a child process of its own (as harness/bench/child.ts does), so peaks do not
// mix. The fp32 LoRA plans (ortPeftPlanFor) hold the checkpoint's weights as a reference model while
// the graph is built, which is in their load peak; the NF4 variant streams its base linears from the
// checkpoint instead (openOrtQloraModel: read, quantize, drop, one linear at a time). The child also
// reports the RSS that stays resident after a garbage collection, and the peak after generation (ORT
// memory-maps external-data weights, so only pages a forward has touched count before then).
//
// Run as a script: `tsx harness/bench/peft.ts [--quick] [--threads N] [--model ID] [--layers N] [--json]`;
// as a child: `node --expose-gc --import tsx harness/bench/peft.ts --child '<job json>'`.
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';
import type { ModelArch } from '../../runners/arch.ts';
import { InputError } from '../../results/errors.ts';
import { openCheckpoint } from '../../runners/hf/checkpoint.ts';
import { textTensorSpecs } from '../../runners/hf/tensor-names.ts';
import { applyPeftToReference } from '../../runners/peft/index.ts';
import { loadReferenceFromCheckpoint } from '../../runners/reference-weights.ts';
import { NF4_BLOCK } from '../../runners/quant/nf4.ts';
import { LlamaTokenizer } from '../../runners/tokenizer.ts';
import { llamaWeightBytes } from '../../runners/ort/llama-graph.ts';
import { OrtLlamaModel } from '../../runners/ort/llama-model.ts';
import { openOrtQloraModel, ortPeftPlan, ortPeftPlanFor } from '../../runners/ort/llama-peft.ts';
import { OrtRunner } from '../../runners/ort/runner.ts';
import type { CliIO } from '../cli/command.ts';
import { printJson, printTable } from '../cli/output.ts';
import { benchYargs, checkBenchArgs, fmt, loadAverage, machineLine, runScript } from './common.ts';
import { benchPrompt, measureGeneration, type GenerationRates } from './measure.ts';
import { runBenchChild } from './spawn.ts';
import { ensureRandomCheckpoint, randomModelConfig } from './random-checkpoint.ts';

export const PEFT_VARIANTS = ['fp32', 'lora-merged', 'lora-unmerged', 'nf4-lora'] as const;
export type PeftVariant = (typeof PEFT_VARIANTS)[number];
/** Issue 5's target: NF4 peak RSS <= 0.35x of fp32. */
export const NF4_RSS_TARGET = 0.35;
/**
 * The adapter of every LoRA variant: rank 16 on the attention projections (random non-zero weights,
 * so merging changes the weights). The NF4 variant runs the same adapter over an NF4 base.
 */
export const BENCH_LORA = 'lora:r=16,alpha=32,targets=q_proj+k_proj+v_proj+o_proj';

export const peftChildJobSchema = z.strictObject({
  variant: z.enum(PEFT_VARIANTS),
  /** A checkpoint directory or anything openCheckpoint accepts. */
  model: z.string().min(1),
  threads: z.number().int().min(1),
  promptWords: z.number().int().min(1),
  newTokens: z.number().int().min(2),
  reps: z.number().int().min(1),
});
export type PeftChildJob = z.infer<typeof peftChildJobSchema>;

export interface PeftChildResult {
  variant: PeftVariant;
  peft: string | null;
  loadSeconds: number;
  /** Peak RSS right after the load (graph build and session creation included). */
  loadPeakRssBytes: number;
  /** RSS after the load and a garbage collection: what serving the model holds. */
  residentRssBytes: number;
  /** Peak RSS at the end, after generation. */
  peakRssBytes: number;
  generation: GenerationRates;
  /** Greedy ids of a fixed short prompt: merged and unmerged LoRA must agree. */
  greedyIds: number[];
  /** Current RSS after each loading stage, in order. */
  stages: { stage: string; rssBytes: number }[];
}

export function parsePeftChildJob(json: string): PeftChildJob {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (error) {
    throw new InputError(`bench:peft child job: not valid JSON (${(error as Error).message}); pass one JSON object after --child`);
  }
  const parsed = peftChildJobSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new InputError(`bench:peft child job: ${issue.path.join('.') || '(root)'}: ${issue.message}; see peftChildJobSchema in harness/bench/peft.ts`);
  }
  return parsed.data;
}

/** RSS (current, not peak) after each loading stage: shows what dominates a variant's peak. */
type Stages = { stage: string; rssBytes: number }[];

/** The variant's model: plain fp32, LoRA merged or unmerged on fp32, or LoRA unmerged on an NF4 base. */
async function openVariant(job: PeftChildJob, stages: Stages): Promise<OrtRunner> {
  const mark = (stage: string) => stages.push({ stage, rssBytes: process.memoryUsage().rss });
  const checkpoint = await openCheckpoint(job.model, { offline: true });
  const tokenizer = LlamaTokenizer.fromDir(checkpoint.dir);
  const session = { device: 'cpu' as const, intraOpThreads: job.threads };
  let model: OrtLlamaModel;
  let label: string | null = null;
  if (job.variant === 'fp32') {
    model = await OrtLlamaModel.fromCheckpoint(checkpoint, session);
  } else if (job.variant === 'nf4-lora') {
    // QLoRA streamed from the checkpoint: each linear read, quantized and dropped as the graph is built.
    const opened = await openOrtQloraModel(checkpoint, BENCH_LORA, { ...session, quantizeBase: true });
    model = opened.model;
    label = `${opened.label ?? BENCH_LORA} (NF4 base)`;
  } else {
    const base = loadReferenceFromCheckpoint(checkpoint);
    mark('reference weights read');
    // Both LoRA variants draw the same adapter (spec strings are seeded), so only merging differs.
    const plan = job.variant === 'lora-merged'
      ? (() => {
          const adapted = applyPeftToReference(base, BENCH_LORA, { mode: 'merged' });
          return { ...ortPeftPlan(adapted), adapted };
        })()
      : ortPeftPlanFor(base, BENCH_LORA);
    mark('PEFT plan built');
    model = await OrtLlamaModel.create(checkpoint.arch, checkpoint.config, plan.weights, { ...session, peft: plan.peft });
    label = plan.adapted.peft?.label ?? BENCH_LORA;
  }
  mark('ORT session created');
  const runner = new OrtRunner(checkpoint, model, tokenizer);
  runner.info.peft = label;
  return runner;
}

/**
 * Current RSS once garbage is collected. V8 frees large ArrayBuffers' memory on a background sweeper
 * after gc() returns (a dropped 1 GiB Float32Array still counts right after gc(), not 200 ms later),
 * hence the wait. Started with --expose-gc in a child; in-process (tests) there may be no gc.
 */
async function rssAfterGc(): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 2; i++) {
    gc?.();
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return process.memoryUsage().rss;
}

/** The child's work, callable in-process too (the tests do, on tiny models). */
export async function runPeftVariant(job: PeftChildJob): Promise<PeftChildResult> {
  const start = performance.now();
  const stages: Stages = [];
  const runner = await openVariant(job, stages);
  const loadSeconds = (performance.now() - start) / 1000;
  const loadPeakRssBytes = process.resourceUsage().maxRSS * 1024;
  const residentRssBytes = await rssAfterGc();
  stages.push({ stage: 'after gc', rssBytes: residentRssBytes });
  try {
    const generation = await measureGeneration(runner, job);
    const greedyIds = await runner.greedy(runner.tokenizer.encode(benchPrompt(8, 0), { addSpecialTokens: false }), 4);
    return { variant: job.variant, peft: runner.info.peft, loadSeconds, loadPeakRssBytes, residentRssBytes, peakRssBytes: process.resourceUsage().maxRSS * 1024, generation, greedyIds, stages };
  } finally {
    await runner.close();
  }
}

const CHILD_PREFIX = 'LLAMA_EVAL_BENCH_PEFT ';

/** Runs one variant in a child process (with --expose-gc); its stderr passes through. */
export async function runPeftChild(job: PeftChildJob, options: { env?: NodeJS.ProcessEnv } = {}): Promise<PeftChildResult> {
  const what = `bench:peft child (${job.variant} ${job.model})`;
  const args = ['--child', JSON.stringify(job)];
  return (await runBenchChild(fileURLToPath(import.meta.url), args, { prefix: CHILD_PREFIX, what, nodeFlags: ['--expose-gc'], env: options.env })) as PeftChildResult;
}

/**
 * Bytes of the base weights as each variant stores them: fp32 everywhere, or with QLoRA's quantized
 * linears (all but lm_head; the embedding and norms stay fp32) as NF4 — 4 bits per weight plus one
 * absmax per 64-weight block, which the graph holds dequantized to fp32 (MatMulBnb4's absmax input).
 */
export function baseWeightBytes(arch: ModelArch, nf4: boolean): number {
  let bytes = 0;
  for (const spec of textTensorSpecs(arch)) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const quantized = nf4 && /^model\.layers\.\d+\..*_proj\.weight$/.test(spec.name);
    bytes += quantized ? n / 2 + (n / NF4_BLOCK) * 4 : n * 4;
  }
  return bytes;
}

export interface PeftBenchArgs {
  quick: boolean;
  threads: number;
  model: string;
  /** Decoder layers of the random model (the fp32 LoRA plans hold copies of the weights: a full 1B needs ~3x its size). */
  layers: number;
  json: boolean;
}

export function parsePeftBenchArgs(argv: readonly string[]): PeftBenchArgs {
  const script = 'bench:peft';
  const raw = benchYargs(argv, script, { quick: '2 layers, fewer tokens (about a minute on 2 cores)', threads: 'ORT intra-op threads' })
    .option('layers', { type: 'number', describe: 'decoder layers kept (default 4; 2 with --quick)' })
    .parseSync();
  const schema = z.strictObject({ quick: z.boolean(), threads: z.number().int().min(1), model: z.string().min(1), layers: z.number().int().min(1), json: z.boolean() });
  const values = { quick: raw.quick, threads: raw.threads, model: raw.model, layers: raw.layers ?? (raw.quick ? 2 : 4), json: raw.json };
  return checkBenchArgs(schema, values, script, '--threads 2 --layers 4');
}

export interface PeftRatios {
  /** unmerged / merged decode tokens/s (below 1: the side branches' cost). */
  unmergedDecode: number;
  /** NF4 / fp32 base (same unmerged LoRA): decode and prefill tokens/s, load peak and resident RSS. */
  nf4Decode: number;
  nf4Prefill: number;
  nf4PeakRss: number;
  nf4ResidentRss: number;
  /** NF4 load peak RSS over the plain fp32 model's (no PEFT plan): issue 5's target figure. */
  nf4PeakRssVsPlain: number;
  /** The same after generation (every weight page touched by then). */
  nf4EndPeakRssVsPlain: number;
  /** merged and unmerged LoRA generated the same greedy ids. */
  mergedAgrees: boolean;
}

export function peftRatios(results: readonly PeftChildResult[]): PeftRatios {
  const get = (v: PeftVariant) => {
    const r = results.find((x) => x.variant === v);
    if (!r) throw new Error(`bench:peft: no result for variant ${v}`);
    return r;
  };
  const [plain, merged, unmerged, nf4] = PEFT_VARIANTS.map(get) as [PeftChildResult, PeftChildResult, PeftChildResult, PeftChildResult];
  return {
    unmergedDecode: unmerged.generation.decodeTokensPerSecond / merged.generation.decodeTokensPerSecond,
    nf4Decode: nf4.generation.decodeTokensPerSecond / unmerged.generation.decodeTokensPerSecond,
    nf4Prefill: nf4.generation.prefillTokensPerSecond / unmerged.generation.prefillTokensPerSecond,
    nf4PeakRss: nf4.loadPeakRssBytes / unmerged.loadPeakRssBytes,
    nf4ResidentRss: nf4.residentRssBytes / unmerged.residentRssBytes,
    nf4PeakRssVsPlain: nf4.loadPeakRssBytes / plain.loadPeakRssBytes,
    nf4EndPeakRssVsPlain: nf4.peakRssBytes / plain.peakRssBytes,
    mergedAgrees: merged.greedyIds.join(',') === unmerged.greedyIds.join(','),
  };
}

export async function main(argv: readonly string[], io: CliIO): Promise<number> {
  const args = parsePeftBenchArgs(argv);
  const started = performance.now();
  const header = machineLine(args.threads);
  io.err(`${header}\n`);
  const { arch } = randomModelConfig(args.model, args.layers);
  const label = `${args.model} random (${args.layers} layers)`;
  io.err(`writing/reusing the random-weight ${label} checkpoint...\n`);
  // All layers: the uncut checkpoint bench:runner writes, not a second copy of it.
  const full = randomModelConfig(args.model).arch.text.numLayers;
  const dir = ensureRandomCheckpoint(args.model, { layers: args.layers === full ? undefined : args.layers });
  const gen = args.quick ? { promptWords: 32, newTokens: 5, reps: 1 } : { promptWords: 64, newTokens: 9, reps: 2 };
  const results: PeftChildResult[] = [];
  for (const variant of PEFT_VARIANTS) {
    io.err(`${label}: ${variant} in a child process...\n`);
    results.push(await runPeftChild({ variant, model: dir, threads: args.threads, ...gen }));
  }
  const ratios = peftRatios(results);
  const weights = { fp32: baseWeightBytes(arch, false), nf4: baseWeightBytes(arch, true) };
  const elapsed = (performance.now() - started) / 1000;
  if (args.json) {
    printJson(io, { machine: header, model: label, lora: BENCH_LORA, weights, results, ratios, elapsedSeconds: elapsed });
    return 0;
  }
  io.out(`${header}\n${label}: ${fmt.gib(llamaWeightBytes(arch))} of fp32 weights, ${fmt.gib(weights.nf4)} with QLoRA's linears in NF4 (ratio ${fmt.ratio(weights.nf4 / weights.fp32)}); LoRA: ${BENCH_LORA}\n`);
  io.out(`Greedy generation, ${args.threads} threads, ${gen.promptWords}-word prompt then ${gen.newTokens - 1} decode steps, fastest of ${gen.reps}; each variant in its own child process\n`);
  printTable(io, ['variant', 'load', 'peak RSS after load', 'resident after load + gc', 'peak RSS at end', 'prefill tok/s', 'decode tok/s'],
    results.map((r) => [r.variant, fmt.seconds(r.loadSeconds), fmt.gib(r.loadPeakRssBytes), fmt.gib(r.residentRssBytes), fmt.gib(r.peakRssBytes), fmt.rate(r.generation.prefillTokensPerSecond), fmt.rate(r.generation.decodeTokensPerSecond)]));
  io.out(`\nRSS after each loading stage: ${results.map((r) => `${r.variant}: ${r.stages.map((x) => `${x.stage} ${fmt.gib(x.rssBytes)}`).join(', ')}`).join('; ')}\n`);
  io.out(`\nunmerged / merged LoRA decode tok/s: ${fmt.ratio(ratios.unmergedDecode)} (greedy ids ${ratios.mergedAgrees ? 'agree' : 'DIFFER'})\n`);
  io.out(`NF4 / fp32 base, same unmerged LoRA: decode ${fmt.ratio(ratios.nf4Decode)}, prefill ${fmt.ratio(ratios.nf4Prefill)}, peak RSS ${fmt.ratio(ratios.nf4PeakRss)}, resident RSS ${fmt.ratio(ratios.nf4ResidentRss)}\n`);
  const meets = (r: number) => (r <= NF4_RSS_TARGET ? 'yes' : 'NO');
  io.out(`NF4 peak RSS / plain fp32 model's: after load ${fmt.ratio(ratios.nf4PeakRssVsPlain)} (target <= ${NF4_RSS_TARGET}x: ${meets(ratios.nf4PeakRssVsPlain)}), after generation ${fmt.ratio(ratios.nf4EndPeakRssVsPlain)} (${meets(ratios.nf4EndPeakRssVsPlain)})\n`);
  io.out(`\nWhole run: ${elapsed.toFixed(0)} s; load average at the end ${loadAverage()}.\n`);
  return 0;
}

async function childMain(json: string): Promise<void> {
  try {
    const result = await runPeftVariant(parsePeftChildJob(json));
    process.stdout.write(`${CHILD_PREFIX}${JSON.stringify(result)}\n`);
  } catch (error) {
    process.stderr.write(`bench:peft child: ${(error as Error).message}\n`);
    process.exitCode = error instanceof InputError ? 2 : 3;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv[2] === '--child') await childMain(process.argv[3] ?? '');
  else await runScript(main);
}
