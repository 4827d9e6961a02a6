// Adapted models through the ORT graph against the float64 reference: the graph is built from the
// merged weights (LoRA, DoRA, QLoRA folded in, float32), the reference runs the unmerged side
// branches (float64); token logprobs agree within 1e-4 (issue 5 acceptance) on LLaMA 2, 3 and 4.
import { afterAll, describe, expect, it } from 'vitest';
import { OrtLlamaModel, ortTokenLogprobs } from '../../runners/ort/llama-model.ts';
import { applyPeftToReference } from '../../runners/peft/index.ts';
import { referenceTensorSource } from '../../runners/peft/tensor-source.ts';
import { loadReferenceFromCheckpoint } from '../../runners/reference-weights.ts';
import { referenceTokenLogprobs } from '../../runners/reference.ts';
import { maxAbsDiff, spreadIds, tinyCache } from './ort-helpers.ts';

const cache = tinyCache('peft-ort-');
afterAll(() => cache.cleanup());

const CASES = [
  ['tiny-llama-2', 'lora:r=4,alpha=16,targets=all-linear'],
  ['tiny-llama-3', 'lora:r=4,alpha=8,targets=q_proj+v_proj+down_proj,dora=true'],
  ['tiny-llama-3', 'qlora:r=4,alpha=16'],
  ['tiny-llama-4', 'lora:r=2,alpha=4,targets=all-linear,rslora=true'],
] as const;

describe('PEFT: ORT graph of the merged model vs float64 reference with unmerged branches', () => {
  it.each(CASES)('%s %s agrees within 1e-4', async (id, spec) => {
    const checkpoint = cache.checkpoint(id);
    const base = loadReferenceFromCheckpoint(checkpoint);
    const ids = spreadIds(id === 'tiny-llama-4' ? 40 : 16, checkpoint.arch.text.vocabSize);
    const unmerged = applyPeftToReference(base, spec, { mode: 'unmerged', seed: 7 });
    const merged = applyPeftToReference(base, spec, { mode: 'merged', seed: 7 });
    const expected = referenceTokenLogprobs(unmerged, ids);
    // The adapter matters: the base model's logprobs are further away than the tolerance.
    expect(maxAbsDiff(referenceTokenLogprobs(base, ids), expected)).toBeGreaterThan(1e-3);
    const model = await OrtLlamaModel.create(checkpoint.arch, checkpoint.config, referenceTensorSource(merged), { intraOpThreads: 1 });
    try {
      expect(maxAbsDiff(await ortTokenLogprobs(model, ids), expected)).toBeLessThanOrEqual(1e-4);
    } finally {
      await model.close();
    }
  });

  it('refuses to express unmerged branches as weights', () => {
    const base = loadReferenceFromCheckpoint(cache.checkpoint('tiny-llama-3'));
    expect(() => referenceTensorSource(applyPeftToReference(base, 'lora:r=2', { mode: 'unmerged' }))).toThrow(/apply with mode 'merged'/);
  });
});
