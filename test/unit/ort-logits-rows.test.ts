// The shared multiple-choice path computes lm_head only at the positions it reads (the graph's
// `logits_indices` input). Pinned here: the rows it returns are the rows of a full forward, the
// shared scores equal per-request scoring (each request alone: one prefill of context + continuation
// prefix, no padding, no gather), and bad row requests are refused with a clear message.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OrtLlamaModel, logitsIndicesFeed, ortTokenLogprobs, repeatCache, scoreRow, logSoftmaxRow, argmaxRow } from '../../runners/ort/llama-model.ts';
import { encodePair } from '../../runners/reference-runner.ts';
import { OrtRunner } from '../../runners/ort/runner.ts';
import { LlamaTokenizer } from '../../runners/tokenizer.ts';
import type { LoglikelihoodRequest, LoglikelihoodResult } from '../../runners/types.ts';
import { sharpenedWeights, tinyCache } from '../parity/ort-helpers.ts';

const cache = tinyCache('ort-logits-rows-');
let runner: OrtRunner;

beforeAll(async () => {
  // tiny-llama-3: 128K vocabulary (where skipping lm_head rows matters), weights x8 so the
  // predictions are far from uniform and a wrong row would change the scores.
  const checkpoint = cache.checkpoint('tiny-llama-3');
  const model = await OrtLlamaModel.create(checkpoint.arch, checkpoint.config, sharpenedWeights(checkpoint, 8), { intraOpThreads: 1 });
  runner = new OrtRunner(checkpoint, model, LlamaTokenizer.fromDir(checkpoint.dir));
});
afterAll(async () => {
  await runner?.close();
  cache.cleanup();
});

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('shared multiple-choice scoring with logits at the read positions only', () => {
  it('equals scoring each request alone within 1e-5, for 4 continuations of different lengths', async () => {
    const context = 'Question: Which river flows through Paris?\nAnswer:';
    const continuations = [' Seine', ' the Loire', ' the Rhône, which rises in the Alps', ' Garonne river in the south west'];
    const reqs: LoglikelihoodRequest[] = continuations.map((continuation) => ({ context, continuation }));
    const lengths = continuations.map((c) => runner.tokenizer.encode(c, { addSpecialTokens: false }).length);
    expect(new Set(lengths).size).toBe(4); // the batch is padded: each continuation has its own length
    const shared = await collect(runner.loglikelihood(reqs));
    // The independent computation: each request in a call of its own (a single continuation has
    // nothing to share, so it is one prefill and one unpadded continuation forward).
    const alone: LoglikelihoodResult[] = [];
    for (const r of reqs) alone.push(...(await collect(runner.loglikelihood([r]))));
    for (const [i, s] of shared.entries()) {
      expect(Math.abs(s.logprob - alone[i]!.logprob)).toBeLessThanOrEqual(1e-5);
      // And one full forward of context + continuation with logits at every position (no cache copy,
      // no gather of rows), summed over the continuation's tokens.
      const pair = encodePair((t) => runner.tokenizer.encode(t, { addSpecialTokens: false }), context, continuations[i]!);
      const full = await ortTokenLogprobs(runner.model, [...pair.context, ...pair.continuation]);
      const sum = full.slice(pair.context.length).reduce<number>((a, x) => a + x!, 0);
      expect(Math.abs(s.logprob - sum)).toBeLessThanOrEqual(1e-5);
      expect(s.isGreedy).toBe(alone[i]!.isGreedy);
      expect(s.tokens).toBe(lengths[i]);
    }
  });
});

describe('OrtLlamaModel.forward logitsRows', () => {
  it('returns exactly the requested rows of a full forward, in the requested order', async () => {
    const model = runner.model;
    const vocab = model.text.vocabSize;
    const context = [1000, 2000, 3000, 4000, 5000];
    const prefill = await model.forward({ inputIds: [context], attentionMask: [context.map(() => 1)], past: model.emptyCache(1) });
    const batch = {
      inputIds: [[11, 12, 13, 0], [21, 22, 23, 24]],
      attentionMask: [[1, 1, 1, 1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1, 1, 1, 1]],
    };
    const all = (await model.forward({ ...batch, past: repeatCache(prefill.present, 2) })).logits;
    const rows = [6, 0, 2, 5];
    const some = (await model.forward({ ...batch, past: repeatCache(prefill.present, 2), logitsRows: rows })).logits;
    expect(some.length).toBe(rows.length * vocab);
    rows.forEach((r, i) => {
      // Same positions through a smaller lm_head GEMM: fp32 summation order may differ, not the row.
      expect(maxDiff(some.subarray(i * vocab, (i + 1) * vocab), all.subarray(r * vocab, (r + 1) * vocab))).toBeLessThanOrEqual(1e-5);
    });
  });

  it('refuses rows outside the batch, an empty list, and rows together with logitsToKeep', async () => {
    const model = runner.model;
    const batch = { inputIds: [[11, 12]], attentionMask: [[1, 1]], past: model.emptyCache(1) };
    await expect(model.forward({ ...batch, logitsRows: [2] })).rejects.toThrow(/logits row 2 is outside the batch's 1 x 2 positions/);
    await expect(model.forward({ ...batch, logitsRows: [-1] })).rejects.toThrow(/outside/);
    await expect(model.forward({ ...batch, logitsRows: [] })).rejects.toThrow(/logitsRows is empty/);
    await expect(model.forward({ ...batch, logitsRows: [0], logitsToKeep: 1 })).rejects.toThrow(/not both/);
  });
});

describe('logitsIndicesFeed', () => {
  it('keeps the last k positions of each sequence as [b, k], all of them for 0, the rows as [1, n]', () => {
    // b = 2 sequences of s = 3: flattened rows 0..2 and 3..5.
    expect(logitsIndicesFeed(2, 3, {})).toEqual({ data: BigInt64Array.of(0n, 1n, 2n, 3n, 4n, 5n), dims: [2, 3] });
    expect(logitsIndicesFeed(2, 3, { logitsToKeep: 1 })).toEqual({ data: BigInt64Array.of(2n, 5n), dims: [2, 1] });
    expect(logitsIndicesFeed(2, 3, { logitsToKeep: 9 })).toEqual({ data: BigInt64Array.of(0n, 1n, 2n, 3n, 4n, 5n), dims: [2, 3] });
    expect(logitsIndicesFeed(2, 3, { logitsRows: [4, 1] })).toEqual({ data: BigInt64Array.of(4n, 1n), dims: [1, 2] });
    expect(() => logitsIndicesFeed(2, 3, { logitsToKeep: -1 })).toThrow(/non-negative integer/);
  });
});

describe('scoreRow', () => {
  it('gives logSoftmaxRow\'s entry and argmaxRow\'s index', () => {
    // Row 1 of a [2, 4] array; log-softmax of [1, 3, 3, 0] by hand: lse = log(e + 2e^3 + 1).
    const logits = Float32Array.of(9, 9, 9, 9, 1, 3, 3, 0);
    const lse = Math.log(Math.E + 2 * Math.exp(3) + 1);
    const scored = scoreRow(logits, 1, 4, 0);
    expect(scored.logprob).toBeCloseTo(1 - lse, 12);
    expect(scored.logprob).toBe(logSoftmaxRow(logits, 1, 4)[0]);
    expect(scored.argmax).toBe(1); // tie between 1 and 2 goes to the lower id, as torch.argmax
    expect(scored.argmax).toBe(argmaxRow(logits, 1, 4));
  });
});
