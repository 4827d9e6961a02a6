// What bench:runner and bench:peers measure, through the Runner contract only, so every backend
// (ORT, llama.cpp, the reference) is timed by the same code:
//   - prefill and decode tokens/s of greedy generation, from the runner's own throughput counters;
//   - multiple-choice scoring with the runner's prefix sharing (all choices of a question in one
//     loglikelihood call) against naive scoring (each choice in a call of its own).
import type { ModelArch } from '../../runners/arch.ts';
import { textTensorSpecs } from '../../runners/hf/tensor-names.ts';
import type { LoglikelihoodRequest, Runner } from '../../runners/types.ts';

/** Ordinary English words, most of them one token in the LLaMA 2 and LLaMA 3 vocabularies. */
const WORDS = 'the of and to in is was for on that with as by at from his it an were are which this be or has had not first one their its new after but who they have her she two been other when there all during into school time may years more most only over city some world would where later up such used many can state about national out known university united then made'.split(' ');

/** A prompt of about `words` tokens; `variant` changes its first word, so no cached prefix is reused. */
export function benchPrompt(words: number, variant: number): string {
  return Array.from({ length: words }, (_, i) => WORDS[(i * 7 + variant * 13) % WORDS.length]!).join(' ');
}

export interface GenerationSample {
  prefillTokens: number;
  prefillSeconds: number;
  /** Single-token forward passes: a greedy generation of n tokens runs n - 1 of them after the prefill. */
  decodeSteps: number;
  decodeSeconds: number;
}

export interface GenerationRates {
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  /** Prompt tokens of one measured generation (the tokenizer decides the count). */
  promptTokens: number;
  decodeSteps: number;
  samples: GenerationSample[];
}

/** One greedy generation of `newTokens` tokens from a `promptWords`-word prompt, timed by the runner's counters. */
export async function timeGeneration(runner: Runner, promptWords: number, newTokens: number, variant: number): Promise<GenerationSample> {
  const before = runner.throughput();
  let tokens = 0;
  for await (const result of runner.generate([{ context: benchPrompt(promptWords, variant), until: [], maxTokens: newTokens }])) tokens = result.tokens;
  const after = runner.throughput();
  // Decode steps are counted from the tokens generated, not from the runners' decode counters: the
  // first token comes out of the prefill, and runners disagree on whether to count it as decoded.
  return {
    prefillTokens: after.prefillTokens - before.prefillTokens,
    prefillSeconds: after.prefillSeconds - before.prefillSeconds,
    decodeSteps: Math.max(tokens - 1, 0),
    decodeSeconds: after.decodeSeconds - before.decodeSeconds,
  };
}

export interface GenerationOptions {
  promptWords: number;
  newTokens: number;
  /**
   * Measured generations after one short warm-up (ORT's arena, llama.cpp's buffers). The fastest
   * is reported, prefill and decode each: on a shared machine a neighbour only ever slows a run,
   * so the fastest sample is the least disturbed one (the median still moves with the load).
   */
  reps: number;
}

export async function measureGeneration(runner: Runner, o: GenerationOptions): Promise<GenerationRates> {
  if (o.newTokens < 2) throw new RangeError('measureGeneration: newTokens must be at least 2 (one decode step)');
  await timeGeneration(runner, Math.min(8, o.promptWords), 2, 0);
  const samples: GenerationSample[] = [];
  for (let rep = 1; rep <= o.reps; rep++) samples.push(await timeGeneration(runner, o.promptWords, o.newTokens, rep));
  return {
    prefillTokensPerSecond: Math.max(...samples.map((s) => s.prefillTokens / s.prefillSeconds)),
    decodeTokensPerSecond: Math.max(...samples.map((s) => s.decodeSteps / s.decodeSeconds)),
    promptTokens: samples[0]!.prefillTokens,
    decodeSteps: samples[0]!.decodeSteps,
    samples,
  };
}

export interface SharingComparison {
  questions: number;
  requests: number;
  sharedSeconds: number;
  naiveSeconds: number;
  /** naive / shared wall time. */
  speedup: number;
  /** Largest |logprob(shared) - logprob(naive)| over all requests. */
  maxAbsDiff: number;
  /** Requests whose is_greedy differs between the two ways. */
  greedyMismatches: number;
}

async function collect(iterable: AsyncIterable<{ logprob: number; isGreedy: boolean }>): Promise<{ logprob: number; isGreedy: boolean }[]> {
  const out: { logprob: number; isGreedy: boolean }[] = [];
  for await (const r of iterable) out.push(r);
  return out;
}

/**
 * Scores `questions` (each the requests of one multiple-choice item, same context) both ways,
 * `rounds` times alternating, keeping each way's fastest round (a shared machine slows runs at
 * random; the fastest is the one least disturbed). Warm the runner up first (measureGeneration
 * does): a 1B model's warm-up would cost as much as the comparison.
 */
export async function compareSharing(runner: Runner, questions: readonly (readonly LoglikelihoodRequest[])[], rounds = 1): Promise<SharingComparison> {
  if (questions.length === 0) throw new RangeError('compareSharing: no questions');
  const shared = async () => collect(runner.loglikelihood(questions.flat()));
  const naive = async () => {
    const out: { logprob: number; isGreedy: boolean }[] = [];
    for (const q of questions) for (const req of q) out.push(...(await collect(runner.loglikelihood([req]))));
    return out;
  };
  let sharedSeconds = Infinity;
  let naiveSeconds = Infinity;
  let sharedResults: { logprob: number; isGreedy: boolean }[] = [];
  let naiveResults: { logprob: number; isGreedy: boolean }[] = [];
  for (let round = 0; round < rounds; round++) {
    let start = performance.now();
    sharedResults = await shared();
    sharedSeconds = Math.min(sharedSeconds, (performance.now() - start) / 1000);
    start = performance.now();
    naiveResults = await naive();
    naiveSeconds = Math.min(naiveSeconds, (performance.now() - start) / 1000);
  }
  const diffs = sharedResults.map((r, i) => Math.abs(r.logprob - naiveResults[i]!.logprob));
  return {
    questions: questions.length,
    requests: sharedResults.length,
    sharedSeconds,
    naiveSeconds,
    speedup: naiveSeconds / sharedSeconds,
    maxAbsDiff: Math.max(...diffs),
    greedyMismatches: sharedResults.filter((r, i) => r.isGreedy !== naiveResults[i]!.isGreedy).length,
  };
}

/**
 * Bytes of weights one decode step must read: every matrix once, except the input embedding, of
 * which only the token's row is read (when lm_head is tied to it, the matrix is read once as
 * lm_head). The KV cache and activations are left out: at the short contexts benched they are
 * under 1% of the weights. At `bytesPerWeight` 4 (fp32) or 2 (f16).
 */
export function decodeWeightBytesPerToken(arch: ModelArch, bytesPerWeight = 4): number {
  const t = arch.text;
  let weights = 0;
  for (const spec of textTensorSpecs(arch)) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    weights += spec.name === 'model.embed_tokens.weight' && !t.tieWordEmbeddings ? t.hiddenSize : n;
  }
  return weights * bytesPerWeight;
}
