// LLaMA-Adapter V1 (HF PEFT ADAPTION_PROMPT) on the reference forward: zero gates are the identity,
// a hand-computed one-token case, the PEFT directory format, and bad adapters.
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parsePeftSpec, type AdapterV1Spec } from '../../harness/peft/index.ts';
import { readCheckpointDir } from '../../runners/hf/checkpoint.ts';
import { applyAdaptionPrompt } from '../../runners/peft/adaption-prompt.ts';
import { applyPeftToReference, writeAdaptionPromptAdapter } from '../../runners/peft/index.ts';
import { memoryAdapterTensors } from '../../runners/peft/lora.ts';
import { loadReferenceFromCheckpoint, type ReferenceModel } from '../../runners/reference-weights.ts';
import { referenceHidden, referenceLogits } from '../../runners/reference.ts';
import { ensureTinyCheckpoint } from '../../runners/tiny.ts';
import { InputError } from '../../results/errors.ts';

const tmp = mkdtempSync(join(tmpdir(), 'peft-v1-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const load = (id: string): ReferenceModel =>
  loadReferenceFromCheckpoint(readCheckpointDir(ensureTinyCheckpoint(id, { env: { LLAMA_EVAL_CACHE: join(tmp, 'cache') } }), id, 'tiny'));
const ids = [1, 17, 99, 5, 300, 42];
const maxDiff = (a: Float64Array[], b: Float64Array[]) => {
  let m = 0;
  a.forEach((row, i) => row.forEach((x, j) => (m = Math.max(m, Math.abs(x - b[i]![j]!)))));
  return m;
};

describe('LLaMA-Adapter V1 on the tiny models', () => {
  for (const id of ['tiny-llama-2', 'tiny-llama-3', 'tiny-llama-4']) {
    const model = load(id);
    it(`${id}: zero gates (the paper's zero-init gating) leave logits exactly unchanged`, () => {
      const base = referenceLogits(model, ids);
      for (const spec of ['adapter-v1:layers=2,len=3', 'adapter-v1:layers=1,len=5,gate=scalar']) {
        expect(maxDiff(referenceLogits(applyPeftToReference(model, spec, { init: 'zero' }), ids), base)).toBe(0);
      }
    });
    it(`${id}: non-zero gates change only the adapted layers' outputs`, () => {
      const adapted = applyPeftToReference(model, 'adapter-v1:layers=1,len=3', { seed: 2 });
      expect([...adapted.peft!.adaptionPrompts.keys()]).toEqual([model.layers.length - 1]);
      expect(maxDiff(referenceLogits(adapted, ids), referenceLogits(model, ids))).toBeGreaterThan(1e-4);
    });
  }
});

describe('LLaMA-Adapter V1 hand-checked case', () => {
  it('one token, identity projections: gate * softmax(q.p / sqrt(d)) p is added to the attention output', () => {
    const base = load('tiny-llama-3');
    const text = { ...base.text, hiddenSize: 2, numHeads: 1, numKvHeads: 1, headDim: 2, numLayers: 1, vocabSize: 2, intermediateSize: 1, rmsNormEps: 0 };
    const eye = Float32Array.of(1, 0, 0, 1);
    const model: ReferenceModel = {
      arch: { ...base.arch, text }, text, temperatureTuning: null,
      embed: Float32Array.of(1, 0, 0, 1), norm: Float32Array.of(1, 1), lmHead: eye,
      layers: [{
        inputNorm: Float32Array.of(1, 1), postAttentionNorm: Float32Array.of(1, 1),
        q: eye, k: eye, v: eye, o: eye, qBias: null, kBias: null, vBias: null, oBias: null,
        // A zero MLP adds nothing, so the layer output is x + attention + adapter.
        mlp: { gate: new Float32Array(2), up: new Float32Array(2), down: new Float32Array(2), gateBias: null, upBias: null, downBias: null, inter: 1 },
        moe: null,
      }],
    };
    const spec = parsePeftSpec('adapter-v1:layers=1,len=2,gate=scalar') as AdapterV1Spec;
    const tensors = memoryAdapterTensors('hand', [
      { name: 'base_model.model.model.layers.0.self_attn.adaption_prompt', shape: [1, 2, 2], data: Float32Array.of(1, 0, 0, 1) },
      { name: 'base_model.model.model.layers.0.self_attn.adaption_gate', shape: [1], data: Float32Array.of(0.5) },
    ]);
    const [h] = referenceHidden(applyAdaptionPrompt(model, spec, tensors), [0]);
    // By hand: x = [1, 0]; RMSNorm (eps 0) gives n = [sqrt 2, 0]; q = k = v = n (position 0: RoPE is the
    // identity); attention over the one token returns v = [sqrt 2, 0]. Prompt keys/values are the rows
    // p1 = [1, 0], p2 = [0, 1]; scores q.p / sqrt(2) = [1, 0]; softmax = [e/(e+1), 1/(e+1)] =
    // [0.7310585786300049, 0.2689414213699951]; times gate 0.5 times [p1; p2] = [0.365529..., 0.134470...].
    // Residual: [1 + sqrt 2 + 0.3655292893150024, 0.13447071068499755] = [2.7797428516880975, 0.134470...];
    // final RMSNorm: divide by sqrt(mean of squares) -> [1.4125617156936452, 0.06833300342166225].
    expect(h![0]).toBeCloseTo(1.4125617156936452, 13);
    expect(h![1]).toBeCloseTo(0.06833300342166225, 13);
  });
});

describe('ADAPTION_PROMPT adapter directories', () => {
  const model = load('tiny-llama-3');
  it('reads PEFT names and a scalar gate: same logits as the spec string with gate=scalar', () => {
    const dir = join(tmp, 'v1');
    writeAdaptionPromptAdapter(dir, parsePeftSpec('adapter-v1:layers=2,len=3') as AdapterV1Spec, model, 4);
    expect(JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'))).toMatchObject({ peft_type: 'ADAPTION_PROMPT', adapter_len: 3, adapter_layers: 2 });
    const fromDir = referenceLogits(applyPeftToReference(model, dir), ids);
    const fromSpec = referenceLogits(applyPeftToReference(model, 'adapter-v1:layers=2,len=3,gate=scalar', { seed: 4 }), ids);
    expect(maxDiff(fromDir, fromSpec)).toBe(0);
  });

  it('more adapter layers than the model has, or a prompt of the wrong width, is an InputError', () => {
    expect(() => applyPeftToReference(model, 'adapter-v1:layers=30,len=10')).toThrow(InputError);
    expect(() => applyPeftToReference(model, 'adapter-v1:layers=30,len=10')).toThrow(/more than the model's 2 decoder layers/);
    const dir = join(tmp, 'v1-wide');
    writeAdaptionPromptAdapter(dir, parsePeftSpec('adapter-v1:layers=1,len=3') as AdapterV1Spec, model, 4);
    const config = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
    writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ ...config, adapter_len: 4 }));
    expect(() => applyPeftToReference(model, dir)).toThrow(/adaption_prompt" has shape \[1, 3, 64\], expected \[1, 4, 64\]/);
  });
});
