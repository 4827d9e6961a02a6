// The fused contrib-op graph (GroupQueryAttention, RotaryEmbedding, SkipSimplifiedLayerNormalization,
// SimplifiedLayerNormalization; runners/ort/llama-fused.ts) against the plain-op graph, itself
// checked against the float64 reference in ort-reference.test.ts: same logits on a prefill, on
// KV-cached decoding and on a right-padded batch (the padding GroupQueryAttention supports).
import { afterAll, describe, expect, it } from 'vitest';
import { OrtLlamaModel } from '../../runners/ort/llama-model.ts';
import { sharpenedWeights, spreadIds, tinyCache } from './ort-helpers.ts';

const FUSED_IDS = ['tiny-llama-1', 'tiny-llama-2', 'tiny-llama-3.2', 'tiny-llama-4'];

const cache = tinyCache('ort-fused-');
afterAll(() => cache.cleanup());

// fp32 logits of magnitude ~10 from different kernels (MLAS attention vs MatMul + Softmax).
const TOLERANCE = 1e-4;

function maxDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

// 3, 3.1 and 3.3 differ from 3.2 only in sizes and ties the fused ops do not see; the 128K-vocab
// models dominate the runtime, so one stands for them.
describe.each(FUSED_IDS)('%s: fused graph vs plain graph', (id) => {
  it('prefill, cached decode steps and a right-padded batch give the same logits (1e-4)', async () => {
    const checkpoint = cache.checkpoint(id);
    const source = sharpenedWeights(checkpoint, 8);
    const plain = await OrtLlamaModel.create(checkpoint.arch, checkpoint.config, source, { intraOpThreads: 1 });
    const fused = await OrtLlamaModel.create(checkpoint.arch, checkpoint.config, source, { intraOpThreads: 1, fused: true });
    try {
      const vocab = plain.text.vocabSize;
      const ids = spreadIds(30, vocab, 7);
      const pastP = plain.emptyCache(1);
      const pastF = fused.emptyCache(1);
      let p = await plain.forward({ inputIds: [ids.slice(0, 24)], attentionMask: [Array<number>(24).fill(1)], past: pastP });
      let f = await fused.forward({ inputIds: [ids.slice(0, 24)], attentionMask: [Array<number>(24).fill(1)], past: pastF });
      expect(maxDiff(f.logits, p.logits)).toBeLessThanOrEqual(TOLERANCE);
      for (let at = 24; at < 30; at++) {
        const mask = [Array<number>(at + 1).fill(1)];
        p = await plain.forward({ inputIds: [[ids[at]!]], attentionMask: mask, past: p.present });
        f = await fused.forward({ inputIds: [[ids[at]!]], attentionMask: mask, past: f.present });
        expect(maxDiff(f.logits, p.logits)).toBeLessThanOrEqual(TOLERANCE);
        expect(maxDiff(f.present.keys[0]!, p.present.keys[0]!)).toBeLessThanOrEqual(TOLERANCE);
      }
      // Right-padded batch of two: compare the real positions only.
      const short = spreadIds(11, vocab, 8);
      const batch = {
        inputIds: [ids.slice(0, 20), [...short, ...Array<number>(9).fill(0)]],
        attentionMask: [Array<number>(20).fill(1), [...Array<number>(11).fill(1), ...Array<number>(9).fill(0)]],
      };
      const pb = await plain.forward({ ...batch, past: plain.emptyCache(2) });
      const fb = await fused.forward({ ...batch, past: fused.emptyCache(2) });
      expect(maxDiff(fb.logits.subarray(0, 20 * vocab), pb.logits.subarray(0, 20 * vocab))).toBeLessThanOrEqual(TOLERANCE);
      expect(maxDiff(fb.logits.subarray(20 * vocab, 31 * vocab), pb.logits.subarray(20 * vocab, 31 * vocab))).toBeLessThanOrEqual(TOLERANCE);
    } finally {
      await plain.close();
      await fused.close();
    }
  });
});
