// LLaMA-Adapter V2 (official llama_adapter_v2_chat65b forward) on the reference model: identity at the
// release's init, merged (scale folded into W) equals unmerged, a hand-checked linear, official names.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parsePeftSpec, type AdapterV2Spec } from '../../harness/peft/index.ts';
import { readCheckpointDir } from '../../runners/hf/checkpoint.ts';
import { applyAdapterV2, officialAdapterV2Name } from '../../runners/peft/adapter-v2.ts';
import { applyPeftToReference } from '../../runners/peft/index.ts';
import { memoryAdapterTensors } from '../../runners/peft/lora.ts';
import { loadReferenceFromCheckpoint, type ReferenceModel } from '../../runners/reference-weights.ts';
import { projectorFor, referenceLogits } from '../../runners/reference.ts';
import { ensureTinyCheckpoint } from '../../runners/tiny.ts';

const tmp = mkdtempSync(join(tmpdir(), 'peft-v2-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const load = (id: string): ReferenceModel =>
  loadReferenceFromCheckpoint(readCheckpointDir(ensureTinyCheckpoint(id, { env: { LLAMA_EVAL_CACHE: join(tmp, 'cache') } }), id, 'tiny'));
const ids = [1, 17, 99, 5, 300];
const maxDiff = (a: Float64Array[], b: Float64Array[]) => {
  let m = 0;
  a.forEach((row, i) => row.forEach((x, j) => (m = Math.max(m, Math.abs(x - b[i]![j]!)))));
  return m;
};

describe('LLaMA-Adapter V2', () => {
  for (const id of ['tiny-llama-2', 'tiny-llama-3', 'tiny-llama-4']) {
    const model = load(id);
    it(`${id}: the release's init (bias 0, scale 1, norms as loaded, gates 0) leaves logits exactly unchanged`, () => {
      const base = referenceLogits(model, ids);
      for (const spec of ['adapter-v2', 'adapter-v2:layers=1,len=3']) {
        expect(maxDiff(referenceLogits(applyPeftToReference(model, spec, { init: 'zero' }), ids), base)).toBe(0);
      }
    });
    it(`${id}: merged (scale folded into W) equals unmerged within 1e-9`, () => {
      const spec = 'adapter-v2:layers=1,len=3';
      const merged = referenceLogits(applyPeftToReference(model, spec, { mode: 'merged', seed: 8 }), ids);
      const unmerged = referenceLogits(applyPeftToReference(model, spec, { mode: 'unmerged', seed: 8 }), ids);
      expect(maxDiff(merged, unmerged)).toBeLessThan(1e-9);
      expect(maxDiff(merged, referenceLogits(model, ids))).toBeGreaterThan(1e-4);
    });
  }

  it('a linear computes W (x * scale) + bias (forward_linear_with_scale_and_bias), by hand', () => {
    const model = load('tiny-llama-3');
    const spec = parsePeftSpec('adapter-v2:norm=false') as AdapterV2Spec;
    const h = model.text.hiddenSize;
    const key = 'model.layers.0.self_attn.q_proj';
    // Only q_proj of layer 0 differs from the identity: scale 2 on input 0, bias 0.5 on output 3.
    const all = applyPeftToReference(model, 'adapter-v2:norm=false', { init: 'zero' }).peft!;
    const scale = Float32Array.from(all.inputScale.get(key)!);
    scale[0] = 2;
    const bias = Float32Array.from(all.extraBias.get(key)!);
    bias[3] = 0.5;
    const named = [...all.inputScale].map(([k, v]) => ({ name: `${k}.adapter_v2_scale`, shape: [v.length], data: k === key ? scale : v }))
      .concat([...all.extraBias].map(([k, v]) => ({ name: `${k}.adapter_v2_bias`, shape: [v.length], data: k === key ? bias : v })));
    const adapted = applyAdapterV2(model, spec, memoryAdapterTensors('hand', named), 'unmerged');
    const x = Float64Array.from({ length: h }, (_, i) => (i === 0 ? 1 : 0)); // unit vector e0
    const y = projectorFor(adapted.peft)(key, model.layers[0]!.q, x, h, h, null);
    // W (2 e0) + b: column 0 of q_proj doubled, plus 0.5 on output 3.
    for (const o of [0, 3, 7]) expect(y[o]).toBe(2 * model.layers[0]!.q[o * h]! + (o === 3 ? 0.5 : 0));
  });

  it('maps the official release names onto the modules they modify', () => {
    expect(officialAdapterV2Name('layers.3.attention.wq_bias')).toBe('model.layers.3.self_attn.q_proj.adapter_v2_bias');
    expect(officialAdapterV2Name('layers.0.feed_forward.w2_scale')).toBe('model.layers.0.mlp.down_proj.adapter_v2_scale');
    expect(officialAdapterV2Name('layers.1.ffn_norm.weight')).toBe('model.layers.1.post_attention_layernorm.weight');
    expect(officialAdapterV2Name('layers.1.attention.gate')).toBe('model.layers.1.self_attn.adapter_v2_gate');
    expect(officialAdapterV2Name('tok_embeddings.weight')).toBeNull();
  });

  it('more prompt layers than the model has, or a missing tensor, is an InputError', () => {
    const model = load('tiny-llama-3');
    expect(() => applyPeftToReference(model, 'adapter-v2:layers=5,len=2')).toThrow(/more than the model's 2 decoder layers/);
    const spec = parsePeftSpec('adapter-v2:norm=false,scale=false') as AdapterV2Spec;
    expect(() => applyAdapterV2(model, spec, memoryAdapterTensors('empty', []), 'merged')).toThrow(/missing adapter-v2 tensor "model\.layers\.0\.self_attn\.q_proj\.adapter_v2_bias"/);
  });
});
