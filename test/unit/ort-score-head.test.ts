// The in-graph scoring head (runners/ort/score-head.ts): float32 LogSoftmax + GatherElements + ArgMax
// in ORT against the float64 log-softmax in JavaScript (the path it replaces, still selectable as
// OrtRunner's `scoring: 'js'`): token logprobs within 1e-5 and identical greedy flags on tiny models,
// the same multiple-choice answers from the runner either way, and bad targets refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { argmaxRow, OrtLlamaModel } from '../../runners/ort/llama-model.ts';
import { OrtRunner } from '../../runners/ort/runner.ts';
import { ScoreHead } from '../../runners/ort/score-head.ts';
import { logSoftmax } from '../../runners/reference-ops.ts';
import { LlamaTokenizer } from '../../runners/tokenizer.ts';
import type { LoglikelihoodRequest } from '../../runners/types.ts';
import { sharpenedWeights, spreadIds, tinyCache } from '../parity/ort-helpers.ts';

const cache = tinyCache('ort-score-head-');
afterAll(() => cache.cleanup());

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('ScoreHead on hand-made rows', () => {
  let head: ScoreHead;
  beforeAll(async () => {
    head = await ScoreHead.create(3, 1);
  });
  afterAll(async () => head.close());

  it('log p of logits ln(0.5, 0.3, 0.2) is ln 0.5, ln 0.3, ln 0.2; ties go to the lower id', async () => {
    // Analytic: softmax(ln p) = p when p sums to 1.
    const logits = Float32Array.of(Math.log(0.5), Math.log(0.3), Math.log(0.2), 1, 3, 3);
    const out = await head.score(logits, [[0, 1, 2], [1, 2, 0]]);
    [Math.log(0.5), Math.log(0.3), Math.log(0.2)].forEach((lp, j) => expect(Math.abs(out.logprobs[j]! - lp)).toBeLessThanOrEqual(1e-6));
    expect(Array.from(out.greedy.subarray(0, 3))).toEqual([1, 0, 0]);
    // Row (1, 3, 3): torch.argmax and ONNX ArgMax (select_last_index 0) pick the first of the tie, id 1.
    expect(Array.from(out.greedy.subarray(3))).toEqual([1, 0, 0]);
    // log p(1) = 3 - ln(e + 2e^3), computed by hand.
    expect(Math.abs(out.logprobs[3]! - (3 - Math.log(Math.E + 2 * Math.exp(3))))).toBeLessThanOrEqual(1e-6);
  });

  it('refuses targets outside the vocabulary, ragged target rows, no targets and short logits', async () => {
    const logits = new Float32Array(6);
    await expect(head.score(logits, [[3]])).rejects.toThrow(/target 3 is outside the vocabulary \[0, 3\)/);
    await expect(head.score(logits, [[-1]])).rejects.toThrow(/outside the vocabulary/);
    await expect(head.score(logits, [[0, 1], [2]])).rejects.toThrow(/row 1 has 1 targets, expected 2/);
    await expect(head.score(logits, [])).rejects.toThrow(/no targets/);
    await expect(head.score(logits, [[0], [0], [0]])).rejects.toThrow(/fewer than 3 rows/);
  });
});

// 32K (LLaMA 2) and 128K (LLaMA 3) vocabularies: the float32 sum of exp runs over either.
// The runner-level check runs on the 32K vocabulary only: the float64 JS path it compares with costs
// seconds per question at 128K, which is what the head removes.
describe.each([['tiny-llama-2', true], ['tiny-llama-3', false]] as const)('%s: scoring head vs float64 JS log-softmax', (id, runnerCheck) => {
  let model: OrtLlamaModel;
  let checkpointDir = '';
  beforeAll(async () => {
    const checkpoint = cache.checkpoint(id);
    checkpointDir = checkpoint.dir;
    // Weights x8 so predictions are far from uniform (logits spread like a trained model's).
    model = await OrtLlamaModel.create(checkpoint.arch, checkpoint.config, sharpenedWeights(checkpoint, 8), { intraOpThreads: 1 });
  });
  afterAll(async () => model.close());

  it('token logprobs of a 40-token sequence agree within 1e-5 and greedy flags are identical', async () => {
    const vocab = model.text.vocabSize;
    const ids = spreadIds(40, vocab, 3);
    const { logits } = await model.forward({ inputIds: [ids], attentionMask: [ids.map(() => 1)], past: model.emptyCache(1) });
    // Every row scored against the next token and against its own argmax, so both greedy outcomes occur.
    const targets = ids.slice(1).map((next, r) => [next, argmaxRow(logits, r, vocab)]);
    const head = await ScoreHead.create(vocab, 1);
    try {
      const out = await head.score(logits, targets);
      let max = 0;
      targets.forEach((row, r) => {
        const expected = logSoftmax(logits.subarray(r * vocab, (r + 1) * vocab));
        const best = argmaxRow(logits, r, vocab);
        row.forEach((target, j) => {
          max = Math.max(max, Math.abs(out.logprobs[r * 2 + j]! - expected[target]!));
          expect(out.greedy[r * 2 + j] === 1).toBe(best === target);
        });
      });
      expect(max).toBeLessThanOrEqual(1e-5);
      expect(Array.from(out.greedy).filter((g) => g === 1).length).toBeGreaterThanOrEqual(targets.length);
      // The logprobs are not trivial: spread over several nats.
      expect(Math.min(...Array.from(out.logprobs))).toBeLessThan(-3);
    } finally {
      await head.close();
    }
  });

  if (runnerCheck) it("the runner's multiple-choice answers are the same with scoring 'graph' and 'js'", async () => {
    const checkpoint = cache.checkpoint(id);
    const tokenizer = LlamaTokenizer.fromDir(checkpointDir);
    const graph = new OrtRunner(checkpoint, model, tokenizer, false, { scoring: 'graph' });
    const js = new OrtRunner(checkpoint, model, tokenizer, false, { scoring: 'js' });
    expect(graph.scoring).toBe('graph');
    const question = 'Question: Which city is the capital of France?\nAnswer:';
    const requests: LoglikelihoodRequest[] = [' Paris', ' Lyon, a city on the Rhône', ' Marseille', ' the city of Toulouse'].map((continuation) => ({ context: question, continuation }));
    requests.push({ context: '', continuation: 'Hello world' });
    const a = await collect(graph.loglikelihood(requests));
    const b = await collect(js.loglikelihood(requests));
    a.forEach((r, i) => {
      expect(r.tokens).toBe(b[i]!.tokens);
      // Each token within 1e-5 (above), so a sum of n tokens within n * 1e-5.
      expect(Math.abs(r.logprob - b[i]!.logprob)).toBeLessThanOrEqual(1e-5 * r.tokens);
      expect(r.isGreedy).toBe(b[i]!.isGreedy);
    });
  });
});
