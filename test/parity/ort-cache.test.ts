// KV cache and padding behaviour of the ORT graph: decoding with present.* fed back as
// past_key_values.* gives the logits of a full recompute, and a padded batch (left or right, with
// attention_mask) gives each row's unbatched logits. The independent side of each comparison is the
// same graph run without the cache / without the batch (itself checked against the float64
// reference in ort-reference.test.ts). Sharpened weights make every attention row decisive.
import { afterAll, describe, expect, it } from 'vitest';
import { OrtLlamaModel, type KvCache } from '../../runners/ort/llama-model.ts';
import { sharpenedWeights, spreadIds, tinyCache } from './ort-helpers.ts';

const cache = tinyCache('ort-cache-');
afterAll(() => cache.cleanup());

// fp32 logits of magnitude ~10 computed with different reduction orders (cache vs none, padded vs
// not) differ in the last bits only.
const TOLERANCE = 1e-4;

async function open(id: string): Promise<OrtLlamaModel> {
  const checkpoint = cache.checkpoint(id);
  return OrtLlamaModel.create(checkpoint.arch, checkpoint.config, sharpenedWeights(checkpoint, 8), { intraOpThreads: 1 });
}

function rows(logits: Float32Array, vocab: number, from: number, count: number): Float32Array {
  return logits.subarray(from * vocab, (from + count) * vocab);
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

async function full(model: OrtLlamaModel, ids: number[]): Promise<Float32Array> {
  return (await model.forward({ inputIds: [ids], attentionMask: [ids.map(() => 1)], past: model.emptyCache(1) })).logits;
}

// tiny-llama-4: chunked attention (chunk 16), NoPE + temperature tuning, MoE; 3.2: GQA, llama3
// RoPE, tied embeddings; 1: plain multi-head attention.
describe.each(['tiny-llama-4', 'tiny-llama-3.2', 'tiny-llama-1'])('%s', (id) => {
  it('incremental decoding with the KV cache equals full recompute', async () => {
    const model = await open(id);
    try {
      const vocab = model.text.vocabSize;
      const ids = spreadIds(40, vocab, 3);
      const expected = await full(model, ids);
      // Prefill 14, one 5-token step (crossing the chunk boundary at 16), then one token at a time.
      let past: KvCache = model.emptyCache(1);
      let at = 0;
      for (const step of [14, 5, ...Array<number>(21).fill(1)]) {
        const chunk = ids.slice(at, at + step);
        const out = await model.forward({ inputIds: [chunk], attentionMask: [ids.slice(0, at + step).map(() => 1)], past });
        expect(maxDiff(out.logits, rows(expected, vocab, at, step))).toBeLessThanOrEqual(TOLERANCE);
        past = out.present;
        at += step;
      }
      expect(past.length).toBe(40);
      expect(past.keys[0]!.length).toBe(40 * model.text.numKvHeads * model.text.headDim);
    } finally {
      await model.close();
    }
  });

  it.each(['left', 'right'] as const)('a %s-padded batch equals each row run alone, and so does the next decode step', async (side) => {
    const model = await open(id);
    try {
      const vocab = model.text.vocabSize;
      const seqs = [spreadIds(37, vocab, 4), spreadIds(21, vocab, 5), spreadIds(6, vocab, 6)];
      const width = 37;
      const pad = (seq: number[]) => {
        const fill = Array<number>(width - seq.length).fill(0);
        return side === 'left' ? { ids: [...fill, ...seq], mask: [...fill, ...seq.map(() => 1)] } : { ids: [...seq, ...fill], mask: [...seq.map(() => 1), ...fill] };
      };
      const padded = seqs.map(pad);
      const out = await model.forward({ inputIds: padded.map((p) => p.ids), attentionMask: padded.map((p) => p.mask), past: model.emptyCache(3) });
      const next = seqs.map((_, i) => (i * 31 + 7) % vocab);
      const step = await model.forward({ inputIds: next.map((t) => [t]), attentionMask: padded.map((p) => [...p.mask, 1]), past: out.present });
      for (const [i, seq] of seqs.entries()) {
        const alone = await full(model, [...seq, next[i]!]);
        const offset = side === 'left' ? width - seq.length : 0;
        const batchRow = rows(out.logits, vocab, i * width + offset, seq.length);
        expect(maxDiff(batchRow, rows(alone, vocab, 0, seq.length))).toBeLessThanOrEqual(TOLERANCE);
        expect(maxDiff(rows(step.logits, vocab, i, 1), rows(alone, vocab, seq.length, 1))).toBeLessThanOrEqual(TOLERANCE);
      }
    } finally {
      await model.close();
    }
  });
});

describe('forward: logitsToKeep', () => {
  it('keeps the last k rows of each sequence\'s logits (HF logits_to_keep), 0 keeps all', async () => {
    const model = await open('tiny-llama-4');
    try {
      const vocab = model.text.vocabSize;
      const ids = [spreadIds(9, vocab, 9), spreadIds(9, vocab, 10)];
      const batch = { inputIds: ids, attentionMask: ids.map((r) => r.map(() => 1)), past: model.emptyCache(2) };
      const all = (await model.forward(batch)).logits;
      expect((await model.forward({ ...batch, logitsToKeep: 0 })).logits).toEqual(all);
      const kept = (await model.forward({ ...batch, logitsToKeep: 2 })).logits;
      expect(kept.length).toBe(2 * 2 * vocab);
      for (const row of [0, 1]) {
        expect(maxDiff(kept.subarray(row * 2 * vocab, (row + 1) * 2 * vocab), rows(all, vocab, row * 9 + 7, 2))).toBeLessThanOrEqual(1e-6);
      }
    } finally {
      await model.close();
    }
  });
});

describe('forward: bad input', () => {
  it('refuses a ragged batch and a mask that does not cover the cache', async () => {
    const model = await OrtLlamaModel.fromCheckpoint(cache.checkpoint('tiny-llama-4'), { intraOpThreads: 1 });
    try {
      await expect(model.forward({ inputIds: [[1, 2], [3]], attentionMask: [[1, 1], [1, 1]], past: model.emptyCache(2) })).rejects.toThrow(/pad the batch/);
      await expect(model.forward({ inputIds: [[1, 2]], attentionMask: [[1, 1, 1]], past: model.emptyCache(1) })).rejects.toThrow(/past \+ new = 2/);
    } finally {
      await model.close();
    }
  });
});
