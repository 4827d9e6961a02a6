// The fp16 compute graph (buildLlamaGraph dtype 'fp16') on the CPU execution provider: float16
// weights and activations, float32 RMSNorm statistics, attention softmax and logits, a float32 KV
// cache at the graph edge. Checked against the float64 reference (runners/reference.ts) with a
// tolerance derived from fp16's precision, and against the fp32 graph to show it really is fp16.
import { afterAll, describe, expect, it } from 'vitest';
import { buildLlamaGraph, pastKeyName, pastValueName, presentKeyName, presentValueName, type ComputeDtype } from '../../runners/ort/llama-graph.ts';
import { logitsIndicesFeed, positionIdsFor } from '../../runners/ort/llama-model.ts';
import { GraphOps } from '../../runners/ort/llama-ops.ts';
import { decodeModel } from '../../runners/ort/onnx-builder.ts';
import { OrtSession, type Feed } from '../../runners/ort/session.ts';
import { InputError } from '../../results/errors.ts';
import { logSoftmax } from '../../runners/reference-ops.ts';
import { loadReferenceModel, temperatureTuningFrom, type TensorSource } from '../../runners/reference-weights.ts';
import { referenceLogits } from '../../runners/reference.ts';
import type { Checkpoint } from '../../runners/hf/checkpoint.ts';
import { maxAbsDiff, sharpenedWeights, spreadIds, tinyCache } from './ort-helpers.ts';

const cache = tinyCache('ort-fp16-');
afterAll(() => cache.cleanup());

// fp16 keeps 11 significant bits: unit roundoff u = 2^-11 = 4.9e-4. The sharpened tiny models' logits
// reach |6.4| (float64 reference), so one rounding of a logit is worth u * 6.4 = 3.1e-3; weights and
// every activation are rounded, so we allow ten such roundings: 3e-2 on log p (measured: 2.8e-3 to
// 8.2e-3 on tiny-llama-1/2/3.2/4, plain and fused).
const FP16_TOLERANCE = 3e-2;

/** log p(ids[i] | ids[<i]) and the present cache from one forward of `ids` on a past of `past` tokens. */
async function run(session: OrtSession, checkpoint: Checkpoint, ids: readonly number[], past: { length: number; keys: Float32Array[]; values: Float32Array[] }) {
  const t = checkpoint.arch.text;
  const total = past.length + ids.length;
  const mask = [Array<number>(total).fill(1)];
  const feeds: Record<string, Feed> = {
    input_ids: { data: BigInt64Array.from(ids, BigInt), dims: [1, ids.length] },
    attention_mask: { data: BigInt64Array.from(mask[0]!, BigInt), dims: [1, total] },
    position_ids: { data: BigInt64Array.from(positionIdsFor(mask, ids.length)[0]!, BigInt), dims: [1, ids.length] },
    logits_indices: logitsIndicesFeed(1, ids.length, {}),
  };
  for (let i = 0; i < t.numLayers; i++) {
    feeds[pastKeyName(i)] = { data: past.keys[i] ?? new Float32Array(0), dims: [1, t.numKvHeads, past.length, t.headDim] };
    feeds[pastValueName(i)] = { data: past.values[i] ?? new Float32Array(0), dims: [1, t.numKvHeads, past.length, t.headDim] };
  }
  const out = await session.run(feeds);
  const logits = out.logits!.data as Float32Array;
  const layers = Array.from({ length: t.numLayers }, (_, i) => i);
  return {
    rows: ids.map((_, i) => logSoftmax(logits.subarray(i * t.vocabSize, (i + 1) * t.vocabSize))),
    present: { length: total, keys: layers.map((i) => out[presentKeyName(i)]!.data as Float32Array), values: layers.map((i) => out[presentValueName(i)]!.data as Float32Array) },
  };
}

function graph(checkpoint: Checkpoint, source: TensorSource, dtype: ComputeDtype, fused: boolean): Uint8Array {
  return buildLlamaGraph(checkpoint.arch, source, { temperatureTuning: temperatureTuningFrom(checkpoint.arch, checkpoint.config), logitsIndices: true, dtype, fused });
}

const EMPTY = { length: 0, keys: [], values: [] };

// tiny-llama-2: LLaMA 2 on plain ops; tiny-llama-4: MoE, NoPE, chunked attention and QK-norm, with
// the fused norms (SimplifiedLayerNormalization / SkipSimplifiedLayerNormalization in fp16).
describe.each([['tiny-llama-2', false], ['tiny-llama-4', true]] as const)('%s (fused %s): fp16 graph on CPU', (id, fused) => {
  it(`token logprobs within ${FP16_TOLERANCE} of the float64 reference, cached decode within it of a full run, and not the fp32 graph's`, async () => {
    const checkpoint = cache.checkpoint(id);
    const source = sharpenedWeights(checkpoint, 8);
    const t = checkpoint.arch.text;
    const ids = spreadIds(24, t.vocabSize, 5);
    const reference = referenceLogits(loadReferenceModel(checkpoint.arch, checkpoint.config, source), ids).map((row) => logSoftmax(row));
    const expected = ids.map((id, i) => (i === 0 ? null : reference[i - 1]![id]!));
    const tokenLogprobs = (rows: Float64Array[]) => ids.map((id, i) => (i === 0 ? null : rows[i - 1]![id]!));

    const fp16Bytes = graph(checkpoint, source, 'fp16', fused);
    const fp32Bytes = graph(checkpoint, source, 'fp32', fused);
    // The weights really are float16 (ONNX TensorProto FLOAT16 = 10), and the model about half the bytes.
    const embed = decodeModel(fp16Bytes).graph!.initializer!.find((i) => i.name === 'model.embed_tokens.weight')!;
    expect(embed.dataType).toBe(10);
    expect(fp16Bytes.byteLength / fp32Bytes.byteLength).toBeLessThan(0.6);

    const fp16 = await OrtSession.create(fp16Bytes, { intraOpThreads: 1 });
    const fp32 = await OrtSession.create(fp32Bytes, { intraOpThreads: 1 });
    try {
      const full = await run(fp16, checkpoint, ids, EMPTY);
      const got = tokenLogprobs(full.rows);
      expect(maxAbsDiff(got, expected)).toBeLessThanOrEqual(FP16_TOLERANCE);
      // fp32 is within 1e-4 of the reference (ort-reference.test.ts); fp16 must be visibly rounded.
      const single = tokenLogprobs((await run(fp32, checkpoint, ids, EMPTY)).rows);
      expect(maxAbsDiff(got, single)).toBeGreaterThan(1e-4);
      // Incremental decoding through the float32 cache edge: 20 tokens, then 4 one at a time.
      let step = await run(fp16, checkpoint, ids.slice(0, 20), EMPTY);
      for (let at = 20; at < 24; at++) {
        const lp = (step.rows.at(-1)!)[ids[at]!]!;
        expect(Math.abs(lp - full.rows[at - 1]![ids[at]!]!)).toBeLessThanOrEqual(FP16_TOLERANCE);
        step = await run(fp16, checkpoint, [ids[at]!], step.present);
      }
      expect(step.present.length).toBe(24);
    } finally {
      await fp16.close();
      await fp32.close();
    }
  });
});

describe('fp16 graph input checks', () => {
  it('refuses --dtype fp16 together with a PEFT adapter, naming both', () => {
    const checkpoint = cache.checkpoint('tiny-llama-4');
    const build = () => buildLlamaGraph(checkpoint.arch, sharpenedWeights(checkpoint, 1), { temperatureTuning: null, dtype: 'fp16', peft: { createOps: (g) => new GraphOps(g) } });
    expect(build).toThrow(InputError);
    expect(build).toThrow(/--dtype fp16 with --peft/);
  });
});
