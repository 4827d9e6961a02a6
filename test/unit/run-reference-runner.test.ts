// The reference runner against the reference forward's own per-token path: loglikelihood sums are
// checked against referenceTokenLogprobs over the whole sequence (full logits at every position,
// a different code path from the runner's lm_head-at-needed-positions), greedy flags against an
// argmax over referenceLogits, and generation against the same greedy argmax.
import { beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../runners/hf/checkpoint.ts';
import { referenceLogits, referenceTokenLogprobs } from '../../runners/reference.ts';
import { loadReferenceFromCheckpoint, type ReferenceModel } from '../../runners/reference-weights.ts';
import { encodePair, firstStop, ReferenceRunner } from '../../runners/reference-runner.ts';
import { LlamaTokenizer } from '../../runners/tokenizer.ts';
import { NULL_GENERATION, NullRunner, nullLogprob } from '../../runners/null.ts';
import type { GenerateRequest, LoglikelihoodRequest, Runner } from '../../runners/types.ts';

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const argmax = (row: ArrayLike<number>): number => {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
};

describe('encodePair (lm-evaluation-harness _encode_pair)', () => {
  // A character-level "tokenizer" makes the split visible: one id per UTF-16 unit.
  const chars = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

  it('moves the context\'s trailing whitespace onto the continuation', () => {
    // lm_eval/api/model.py TemplateLM._encode_pair: n_spaces = len(context) - len(context.rstrip()).
    expect(encodePair(chars, 'Answer:  ', 'yes')).toEqual({ context: chars('Answer:'), continuation: chars('  yes') });
    expect(encodePair(chars, 'Answer:', ' yes')).toEqual({ context: chars('Answer:'), continuation: chars(' yes') });
  });

  it('takes the continuation tokens from the whole string past the context\'s token count', () => {
    // A tokenizer that merges "ab" into one id: the whole-string encoding decides the continuation.
    const merging = (s: string): number[] => s.replace(/ab/g, '\u0001').split('').map((c) => c.charCodeAt(0));
    expect(encodePair(merging, 'xa', 'b')).toEqual({ context: [120, 97], continuation: [] });
    expect(encodePair(merging, 'x', 'ab')).toEqual({ context: [120], continuation: [1] });
  });
});

describe('ReferenceRunner on tiny-llama-3', () => {
  let runner: ReferenceRunner;
  let model: ReferenceModel;
  let tokenizer: LlamaTokenizer;

  beforeAll(async () => {
    const checkpoint = await openCheckpoint('tiny-llama-3', { offline: true });
    model = loadReferenceFromCheckpoint(checkpoint);
    tokenizer = LlamaTokenizer.fromDir(checkpoint.dir);
    runner = await ReferenceRunner.open('tiny-llama-3', { offline: true });
  });

  it('sums the continuation tokens\' logprobs exactly as referenceTokenLogprobs gives them', async () => {
    const reqs: LoglikelihoodRequest[] = [
      { context: 'The capital of France is', continuation: ' Paris' },
      { context: 'The capital of France is ', continuation: 'Berlin, of course' },
      { context: '', continuation: 'Hello world' },
    ];
    const results = await all(runner.loglikelihood(reqs));
    for (const [i, r] of reqs.entries()) {
      // Independent path: no BOS (HFLM default), empty context -> BOS, split of the whole encoding.
      const ctxText = r.context.trimEnd();
      const ctx = r.context === '' ? [tokenizer.bosTokenId!] : tokenizer.encode(ctxText, { addSpecialTokens: false });
      const cont = r.context === ''
        ? tokenizer.encode(r.continuation, { addSpecialTokens: false })
        : tokenizer.encode(r.context + r.continuation, { addSpecialTokens: false }).slice(ctx.length);
      const ids = [...ctx, ...cont];
      const lps = referenceTokenLogprobs(model, ids).slice(ctx.length) as number[];
      const expected = lps.reduce((s, x) => s + x, 0);
      expect(results[i]!.tokens).toBe(cont.length);
      expect(results[i]!.logprob).toBeCloseTo(expected, 9);
      expect(results[i]!.logprob).toBeLessThan(0);
    }
  });

  it('flags a continuation as greedy exactly when every token is the argmax', async () => {
    const context = 'The cat sat on the';
    const ctx = tokenizer.encode(context, { addSpecialTokens: false });
    const g1 = argmax(referenceLogits(model, ctx).at(-1)!);
    const g2 = argmax(referenceLogits(model, [...ctx, g1]).at(-1)!);
    const greedyText = tokenizer.decode([g1, g2]);
    // The test only means something if the greedy text re-encodes to the same tokens.
    expect(tokenizer.encode(context + greedyText, { addSpecialTokens: false })).toEqual([...ctx, g1, g2]);
    const other = (g1 + 1) % model.text.vocabSize;
    const otherText = tokenizer.decode([other]);
    expect(tokenizer.encode(context + otherText, { addSpecialTokens: false })).toEqual([...ctx, other]);
    const [greedy, notGreedy] = await all(runner.loglikelihood([{ context, continuation: greedyText }, { context, continuation: otherText }]));
    expect(greedy!.isGreedy).toBe(true);
    expect(notGreedy!.isGreedy).toBe(false);
  });

  it('generates the greedy tokens, and cuts at the first stop string', async () => {
    const context = 'Once upon a time';
    const ctx = tokenizer.encode(context, { addSpecialTokens: false });
    const ids = [...ctx];
    for (let i = 0; i < 6; i++) ids.push(argmax(referenceLogits(model, ids).at(-1)!));
    const expectedText = tokenizer.decode(ids.slice(ctx.length), { skipSpecialTokens: true });
    const [full] = await all(runner.generate([{ context, until: [], maxTokens: 6 }]));
    expect(full).toEqual({ text: expectedText, tokens: 6 });
    // Stop at a piece of the text that starts after its first character.
    const stop = expectedText.slice(2, 4);
    const [cut] = await all(runner.generate([{ context, until: ['\u0000never', stop], maxTokens: 6 }]));
    expect(expectedText.indexOf(stop)).toBeGreaterThan(0);
    expect(cut!.text).toBe(expectedText.slice(0, expectedText.indexOf(stop)));
    expect(cut!.tokens).toBeLessThanOrEqual(6);
  });

  it('counts throughput and reports a peak RSS', () => {
    const t = runner.throughput();
    expect(t.prefillTokens).toBeGreaterThan(0);
    expect(t.decodeTokens).toBeGreaterThan(0);
    expect(runner.memory().peakRssBytes).toBeGreaterThan(50 * 2 ** 20); // the tiny model alone is 65 MB of float32 weights
  });
});

describe('firstStop', () => {
  it('finds the earliest of several stop strings and ignores empty ones', () => {
    expect(firstStop('a\n\nb Question:', ['Question:', '\n\n', ''])).toBe(1);
    expect(firstStop('abc', ['x'])).toBe(-1);
  });
});

describe('NullRunner', () => {
  const runner: Runner = new NullRunner({ model: 'm', peft: 'lora r=8' });

  it('scores from the request text alone, the same every time', async () => {
    const req = { context: 'Q: 2+2', continuation: ' four apples' };
    const [a] = await all(runner.loglikelihood([req]));
    const [b] = await all(new NullRunner().loglikelihood([req]));
    expect(a!.logprob).toBe(b!.logprob);
    expect(a!.logprob).toBe(nullLogprob(req.context, req.continuation));
    // -(1 + 9u) per token, u in [0, 1), two whitespace tokens.
    expect(a!.logprob).toBeLessThanOrEqual(-2);
    expect(a!.logprob).toBeGreaterThan(-20);
    expect(a!.tokens).toBe(2);
    expect(runner.info).toMatchObject({ backend: 'null', model: 'm', peft: 'lora r=8' });
  });

  it('generates its fixed text, cut at stop strings and maxTokens', async () => {
    const reqs: GenerateRequest[] = [
      { context: 'x', until: [], maxTokens: 100 },
      { context: 'x', until: ['is'], maxTokens: 100 },
      { context: 'x', until: [], maxTokens: 2 },
    ];
    expect((await all(runner.generate(reqs))).map((r) => r.text)).toEqual([NULL_GENERATION, 'The answer ', 'The answer']);
  });
});
