// Drift between model pairs built from one tiny checkpoint (harness/drift). Every figure is checked
// against an independent computation written out here: softmax of each side's logits, then
// KL = sum p ln(p / q) in the probability domain (reports/drift.ts works in the log domain), the
// top token by indexOf(max), perplexities from the target probabilities.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDriftText } from '../../harness/drift/data.ts';
import { driftWindows, measureDrift } from '../../harness/drift/measure.ts';
import { resolvePair, type DriftPair } from '../../harness/drift/pair.ts';
import { InputError } from '../../results/errors.ts';
import { referenceLogits } from '../../runners/reference.ts';
import { loadReferenceFromCheckpoint, loadReferenceModel, type ReferenceModel } from '../../runners/reference-weights.ts';
import { quantizeReferenceNf4 } from '../../runners/quant/nf4-model.ts';
import { sharpenedWeights, spreadIds, tinyCache } from '../parity/ort-helpers.ts';

const cache = tinyCache('drift-measure-');
afterAll(() => cache.cleanup());
const checkpoint = cache.checkpoint('tiny-llama-2');
const model = loadReferenceFromCheckpoint(checkpoint);
const vocab = model.text.vocabSize;
// Two windows of token ids spread over the vocabulary, each opened by BOS (id 1 in Llama 2).
const windows = [[1, ...spreadIds(20, vocab)], [1, ...spreadIds(15, vocab, 1)]];

function softmax(row: ArrayLike<number>): number[] {
  const xs = Array.from(row);
  const m = Math.max(...xs);
  const e = xs.map((x) => Math.exp(x - m));
  const z = e.reduce((s, x) => s + x, 0);
  return e.map((x) => x / z);
}

/** The figures by hand from the two reference models' logits. */
function independent(base: ReferenceModel, adapted: ReferenceModel) {
  const kls: number[] = [];
  let same = 0, nll = 0, nllBase = 0;
  for (const w of windows) {
    const lb = referenceLogits(base, w);
    const la = referenceLogits(adapted, w);
    for (let i = 0; i + 1 < w.length; i++) {
      const p = softmax(lb[i]!);
      const q = softmax(la[i]!);
      kls.push(p.reduce((s, pj, j) => s + (pj === 0 ? 0 : pj * Math.log(pj / q[j]!)), 0));
      if (p.indexOf(Math.max(...p)) === q.indexOf(Math.max(...q))) same++;
      nll -= Math.log(q[w[i + 1]!]!);
      nllBase -= Math.log(p[w[i + 1]!]!);
    }
  }
  const n = kls.length;
  return { n, klMean: kls.reduce((s, x) => s + x, 0) / n, klMax: Math.max(...kls), top1: same / n, pplRatio: Math.exp((nll - nllBase) / n) };
}

const near = (actual: number, expected: number, rel: number) => expect(Math.abs(actual - expected)).toBeLessThanOrEqual(rel * Math.abs(expected));

describe('drift between model pairs', () => {
  it('a zero-initialized LoRA (B = 0) gives KL exactly 0, agreement 1, PPL ratio 1', async () => {
    const pair = resolvePair(model, { peft: 'lora:r=8,targets=all-linear', against: 'base', backend: 'reference', init: 'zero' });
    const d = await measureDrift(pair, windows, checkpoint.config);
    expect(d.positions).toBe(35);
    expect(d.kl_per_position.every((k) => k === 0)).toBe(true);
    expect(d.kl_max).toBe(0);
    expect(d.top1_agreement.value).toBe(1);
    expect(d.ppl_ratio.value).toBe(1);
  });

  it('a zero-gated LLaMA-Adapter V1 gives KL exactly 0', async () => {
    const pair = resolvePair(model, { peft: 'adapter-v1:layers=1,len=4', against: 'base', backend: 'reference', init: 'zero' });
    const d = await measureDrift(pair, windows, checkpoint.config);
    expect(d.kl_max).toBe(0);
    expect(d.top1_agreement.value).toBe(1);
  });

  it('a random LoRA against the base matches the independent computation', async () => {
    const pair = resolvePair(model, { peft: 'lora:r=8', against: 'base', backend: 'reference', seed: 3 });
    const d = await measureDrift(pair, windows, checkpoint.config);
    const ref = independent(model, pair.adapted.model);
    expect(d.positions).toBe(ref.n);
    expect(d.kl_mean.value).toBeGreaterThan(0);
    near(d.kl_mean.value, ref.klMean, 1e-8);
    near(d.kl_max, ref.klMax, 1e-8);
    expect(d.top1_agreement.value).toBe(ref.top1);
    near(d.ppl_ratio.value, ref.pplRatio, 1e-12);
  });

  it('fp32 vs NF4 base: KL > 0 and small, as computed independently', async () => {
    const pair = resolvePair(model, { against: 'nf4', backend: 'reference' });
    const d = await measureDrift(pair, windows, checkpoint.config);
    const ref = independent(model, quantizeReferenceNf4(model));
    expect(d.kl_mean.value).toBeGreaterThan(0);
    // NF4 keeps each weight within half a code step of its absmax block; on this near-uniform
    // random model that moves the distribution by ~1e-4 nats (measured 1.0e-4 on a text file).
    expect(d.kl_mean.value).toBeLessThan(1e-2);
    near(d.kl_mean.value, ref.klMean, 1e-8);
    near(d.kl_max, ref.klMax, 1e-8);
    expect(d.top1_agreement.value).toBe(ref.top1);
  });

  it('merged vs unmerged LoRA: only rounding differs', async () => {
    const pair = resolvePair(model, { peft: 'lora:r=8', against: 'unmerged', backend: 'reference' });
    const d = await measureDrift(pair, windows, checkpoint.config);
    expect(d.kl_max).toBeLessThan(1e-12);
    expect(d.top1_agreement.value).toBe(1);
  });

  it('ORT vs the float64 reference: KL < 1e-6 on a model with far-from-uniform distributions', async () => {
    // Weights x8 so the next-token distributions are sharp (parity tests' fixture); with the
    // raw 0.02-std init every row is nearly uniform and any backend would agree.
    const sharp = loadReferenceModel(checkpoint.arch, checkpoint.config, sharpenedWeights(checkpoint, 8));
    const pair: DriftPair = resolvePair(sharp, { peft: 'lora:r=8', against: 'reference', backend: 'ort' });
    expect(pair.base.backend).toBe('reference');
    const d = await measureDrift(pair, windows, checkpoint.config);
    // The distributions are far from uniform: a uniform one gives PPL = vocab exactly, these are
    // more than e^0.5 away from it (the spread ids are unlikely targets, so PPL lands above it).
    expect(Math.abs(Math.log(d.ppl_base / vocab))).toBeGreaterThan(0.5);
    expect(d.kl_mean.value).toBeLessThan(1e-6);
    expect(d.kl_max).toBeLessThan(1e-6);
    expect(d.top1_agreement.value).toBe(1);
  });
});

describe('drift windows', () => {
  it('opens every window with the prefix and scores each text token once', () => {
    const w = driftWindows([10, 11, 12, 13, 14], [1], { ctx: 3, maxTokens: 100 });
    expect(w).toEqual([[1, 10, 11], [1, 12, 13], [1, 14]]);
    expect(w.reduce((s, x) => s + x.length - 1, 0)).toBe(5);
  });

  it('without a prefix, the last token of a window opens the next', () => {
    expect(driftWindows([10, 11, 12, 13, 14], [], { ctx: 3, maxTokens: 100 })).toEqual([[10, 11, 12], [12, 13, 14]]);
  });

  it('stops at --max-tokens scored positions', () => {
    expect(driftWindows([10, 11, 12, 13, 14], [1], { ctx: 3, maxTokens: 3 })).toEqual([[1, 10, 11], [1, 12]]);
  });

  it('refuses bad sizes and texts too short to score', () => {
    expect(() => driftWindows([10, 11], [1], { ctx: 1, maxTokens: 10 })).toThrow('--ctx 1: expected an integer above 1');
    expect(() => driftWindows([10, 11], [1], { ctx: 8, maxTokens: 0 })).toThrow('--max-tokens 0: expected a positive integer');
    expect(() => driftWindows([10], [], { ctx: 8, maxTokens: 10 })).toThrow(InputError);
  });
});

describe('drift pairs and data: bad input', () => {
  it('names what each --against needs', () => {
    expect(() => resolvePair(model, { against: 'unmerged', backend: 'reference' })).toThrow('give --peft <adapter>');
    expect(() => resolvePair(model, { peft: 'lora', against: 'unmerged', backend: 'ort' })).toThrow('needs --backend reference');
    expect(() => resolvePair(model, { against: 'reference', backend: 'reference' })).toThrow('give --backend ort');
    expect(() => resolvePair(model, { peft: 'qlora', against: 'nf4', backend: 'reference' })).toThrow('use --peft lora:');
    expect(() => resolvePair(model, { against: 'lora:r=zero', backend: 'reference' })).toThrow(InputError);
  });

  it('refuses token ids outside the vocabulary', async () => {
    const pair = resolvePair(model, { against: 'base', backend: 'reference' });
    await expect(measureDrift(pair, [[1, vocab]], checkpoint.config)).rejects.toThrow(`token id ${vocab} is outside the vocabulary`);
  });

  it('reads a text file, a task, and names an unknown one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drift-data-'));
    try {
      const file = join(dir, 'notes.txt');
      writeFileSync(file, 'Hello world');
      const t = await loadDriftText(file, { offline: true });
      expect(t.text).toBe('Hello world');
      // sha256("Hello world"), e.g. `printf 'Hello world' | sha256sum`.
      expect(t.files[0]!.sha256).toBe('64ec88ca00b268e5ba1a35678a1b5316d212f4f366b2477232534a8aeca37f3c');
      writeFileSync(join(dir, 'empty.txt'), '  \n');
      await expect(loadDriftText(join(dir, 'empty.txt'), { offline: true })).rejects.toThrow('the file is empty');
      await expect(loadDriftText(dir, { offline: true })).rejects.toThrow('is a directory');
      await expect(loadDriftText('boolqq', { offline: true })).rejects.toThrow('did you mean boolq');
      const task = await loadDriftText('boolq', { offline: true, limit: 2 });
      expect(task.label).toBe('boolq');
      expect(task.text.length).toBeGreaterThan(20);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
