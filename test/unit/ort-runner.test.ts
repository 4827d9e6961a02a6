// OrtRunner behaviour: prefix-shared multiple-choice scoring gives the float64 reference's sums,
// the same as scoring each request alone; greedy generation follows the reference's argmax; stop
// strings cut the text; counters and memory are reported.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../results/errors.ts';
import { OrtLlamaModel } from '../../runners/ort/llama-model.ts';
import { openOrtRunner, OrtRunner, sampleRow } from '../../runners/ort/runner.ts';
import { seededUniform } from '../../runners/tiny.ts';
import { encodePair } from '../../runners/reference-runner.ts';
import { loadReferenceModel, type ReferenceModel } from '../../runners/reference-weights.ts';
import { logSoftmax } from '../../runners/reference-ops.ts';
import { referenceLogits } from '../../runners/reference.ts';
import { LlamaTokenizer } from '../../runners/tokenizer.ts';
import type { LoglikelihoodRequest, LoglikelihoodResult } from '../../runners/types.ts';
import { sharpenedWeights, tinyCache } from '../parity/ort-helpers.ts';

const cache = tinyCache('ort-runner-');
let runner: OrtRunner;
let reference: ReferenceModel;

beforeAll(async () => {
  // tiny-llama-3: the real LLaMA 3 tokenizer; weights x8 so predictions are far from uniform.
  const checkpoint = cache.checkpoint('tiny-llama-3');
  const source = sharpenedWeights(checkpoint, 8);
  reference = loadReferenceModel(checkpoint.arch, checkpoint.config, source);
  const model = await OrtLlamaModel.create(checkpoint.arch, checkpoint.config, source, { intraOpThreads: 1 });
  runner = new OrtRunner(checkpoint, model, LlamaTokenizer.fromDir(checkpoint.dir));
});
afterAll(async () => {
  await runner?.close();
  cache.cleanup();
});

/** Plain loop: spreading 128K entries into Math.max overflows the stack. */
function argmax(row: Float64Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const QUESTION = 'Question: Which city is the capital of France?\nAnswer:';
const REQUESTS: LoglikelihoodRequest[] = [
  { context: QUESTION, continuation: ' Paris' },
  { context: QUESTION, continuation: ' Lyon, a city on the Rhône' },
  { context: QUESTION, continuation: ' Marseille' },
  { context: QUESTION, continuation: ' the city of Toulouse' },
  { context: 'The sky is ', continuation: 'blue' },
  { context: '', continuation: 'Hello world' },
];

/** The oracle: the reference's token logprobs over the whole encoded pair, summed over the continuation. */
function referenceScore(r: LoglikelihoodRequest): LoglikelihoodResult {
  const tokenizer = runner.tokenizer;
  const pair = r.context === ''
    ? { context: [tokenizer.bosTokenId!], continuation: tokenizer.encode(r.continuation, { addSpecialTokens: false }) }
    : encodePair((text) => tokenizer.encode(text, { addSpecialTokens: false }), r.context, r.continuation);
  const ids = [...pair.context, ...pair.continuation];
  // One float64 forward; row p of the logits predicts token p + 1.
  const rows = referenceLogits(reference, ids).slice(pair.context.length - 1, -1);
  const logprob = pair.continuation.reduce((s, target, j) => s + logSoftmax(rows[j]!)[target]!, 0);
  const isGreedy = pair.continuation.every((target, j) => argmax(rows[j]!) === target);
  return { logprob, isGreedy, tokens: pair.continuation.length };
}

describe('OrtRunner.loglikelihood', () => {
  it('scores a multiple-choice group from one prefill with the reference sums (1e-4), in request order', async () => {
    const results = await collect(runner.loglikelihood(REQUESTS));
    expect(results).toHaveLength(REQUESTS.length);
    results.forEach((result, i) => {
      const expected = referenceScore(REQUESTS[i]!);
      expect(result.tokens).toBe(expected.tokens);
      expect(Math.abs(result.logprob - expected.logprob)).toBeLessThanOrEqual(1e-4);
      expect(result.isGreedy).toBe(expected.isGreedy);
    });
    // The fixture is not trivial: choices differ in length and score.
    expect(new Set(results.map((r) => r.tokens)).size).toBeGreaterThan(2);
  });

  it('prefix sharing gives the results of scoring each request alone (1e-5)', async () => {
    const shared = await collect(runner.loglikelihood(REQUESTS.slice(0, 4)));
    for (const [i, r] of REQUESTS.slice(0, 4).entries()) {
      const [alone] = await collect(runner.loglikelihood([r]));
      expect(Math.abs(alone!.logprob - shared[i]!.logprob)).toBeLessThanOrEqual(1e-5);
    }
  });

  it('counts prefill tokens and reports peak RSS and KV cache bytes', async () => {
    const before = runner.throughput().prefillTokens;
    await collect(runner.loglikelihood(REQUESTS.slice(0, 2)));
    expect(runner.throughput().prefillTokens).toBeGreaterThan(before);
    const memory = runner.memory();
    expect(memory.peakRssBytes).toBeGreaterThan(10 * 2 ** 20);
    // 2 layers x (K and V) x 2 kv heads x 16 dims x 4 bytes = 512 bytes per cached token.
    expect(memory.kvCacheBytes! % 512).toBe(0);
    expect(memory.kvCacheBytes).toBeGreaterThan(0);
  });
});

describe('OrtRunner.generate', () => {
  it('greedy tokens equal the reference argmax, recomputed from scratch each step', async () => {
    const prompt = runner.tokenizer.encode('Once upon a time', { addSpecialTokens: true });
    const generated = await runner.greedy(prompt, 8);
    const ids = [...prompt];
    const expected: number[] = [];
    for (let step = 0; step < 8; step++) {
      const row = referenceLogits(reference, ids).at(-1)!;
      const next = argmax(row);
      expected.push(next);
      ids.push(next);
    }
    expect(generated).toEqual(expected);
    expect(runner.throughput().decodeTokens).toBeGreaterThanOrEqual(7);
  });

  it('cuts the text at the first stop string', async () => {
    const [free] = await collect(runner.generate([{ context: 'Once upon a time', until: [], maxTokens: 8 }]));
    expect(free!.tokens).toBe(8);
    const stop = free!.text.slice(3, 5);
    const [cut] = await collect(runner.generate([{ context: 'Once upon a time', until: [stop], maxTokens: 8 }]));
    expect(cut!.text).toBe(free!.text.slice(0, free!.text.indexOf(stop)));
  });
});

describe('openOrtRunner', () => {
  it('refuses an unknown model with an InputError', async () => {
    await expect(openOrtRunner('tiny-llama-9', { device: 'cpu', offline: true })).rejects.toThrow(InputError);
  });
});

describe('sampleRow', () => {
  const logits = Float32Array.from([0.5, 0.3, 0.2], Math.log);
  const frequencies = (sampling: { temperature: number; topP: number }) => {
    const uniform = seededUniform(1);
    const counts = [0, 0, 0];
    for (let i = 0; i < 20000; i++) counts[sampleRow(logits, sampling, uniform)]! += 1;
    return counts.map((c) => c / 20000);
  };

  it('temperature 0 is argmax', () => {
    expect(sampleRow(Float32Array.of(0.1, 3, -2), { temperature: 0, topP: 1 }, () => 0.99)).toBe(1);
  });

  it('top-p 0.7 of (0.5, 0.3, 0.2) keeps the first two, renormalised to 0.625 / 0.375', () => {
    // HF TopPLogitsWarper: the smallest most-probable set with mass >= 0.7 is {0.5, 0.3}.
    // 20000 draws: binomial standard deviation 0.0034, so 0.015 is over 4 sigma.
    const [a, b, c] = frequencies({ temperature: 1, topP: 0.7 });
    expect(Math.abs(a! - 0.625)).toBeLessThan(0.015);
    expect(Math.abs(b! - 0.375)).toBeLessThan(0.015);
    expect(c).toBe(0);
  });

  it('temperature 2 flattens to p^(1/2) / sum: 0.4155, 0.3218, 0.2628', () => {
    // sqrt(0.5), sqrt(0.3), sqrt(0.2) = 0.7071, 0.5477, 0.4472; their sum 1.7020.
    const f = frequencies({ temperature: 2, topP: 1 });
    [0.4155, 0.3218, 0.2628].forEach((p, i) => expect(Math.abs(f[i]! - p)).toBeLessThan(0.015));
  });
});
