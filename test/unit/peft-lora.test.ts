// LoRA / DoRA on the float64 reference forward: PEFT's tensor naming and scaling, merged == unmerged,
// identity at PEFT's init (B = 0), and one clear InputError per kind of broken adapter.
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parsePeftSpec, type LoraSpec } from '../../harness/peft/index.ts';
import { readCheckpointDir } from '../../runners/hf/checkpoint.ts';
import { addLoraBranch, mergedWeight, type LoraBranch } from '../../runners/peft/branch.ts';
import { applyPeftToReference, writeLoraAdapter } from '../../runners/peft/index.ts';
import { loraScale, PEFT_KEY_PREFIX } from '../../runners/peft/lora.ts';
import { randomLoraTensors } from '../../runners/peft/lora-write.ts';
import { f32Bytes, writeRawSafetensors } from '../../runners/quant/safetensors-raw.ts';
import { linear } from '../../runners/reference-ops.ts';
import { loadReferenceFromCheckpoint, type ReferenceModel } from '../../runners/reference-weights.ts';
import { referenceHidden, referenceLogits } from '../../runners/reference.ts';
import { ensureTinyCheckpoint } from '../../runners/tiny.ts';
import { InputError } from '../../results/errors.ts';

const tmp = mkdtempSync(join(tmpdir(), 'peft-lora-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const load = (id: string): ReferenceModel =>
  loadReferenceFromCheckpoint(readCheckpointDir(ensureTinyCheckpoint(id, { env: { LLAMA_EVAL_CACHE: join(tmp, 'cache') } }), id, 'tiny'));
const models = { 'tiny-llama-2': load('tiny-llama-2'), 'tiny-llama-3': load('tiny-llama-3'), 'tiny-llama-4': load('tiny-llama-4') };
const ids = [1, 17, 99, 5, 300, 42];
const maxDiff = (a: Float64Array[], b: Float64Array[]) => {
  let m = 0;
  a.forEach((row, i) => row.forEach((x, j) => (m = Math.max(m, Math.abs(x - b[i]![j]!)))));
  return m;
};
const lora = (s: string) => parsePeftSpec(s) as LoraSpec;

describe('LoRA arithmetic (hand-computed 2x2)', () => {
  // W = [[1, 2], [3, 4]], A = [[1, 0]] (r = 1), B = [[0.5], [-1]], scale = alpha / r = 2 / 1, x = [1, 1]:
  // W x = [3, 7]; A x = 1; scale * B A x = [1, -2]; y = [4, 5]. Merged W + 2 B A = [[2, 2], [1, 4]].
  const w = Float32Array.of(1, 2, 3, 4);
  const branch: LoraBranch = { a: Float32Array.of(1, 0), b: Float32Array.of(0.5, -1), r: 1, inFeatures: 2, outFeatures: 2, scale: 2, doraScale: null };
  it('unmerged side branch adds scale * B A x', () => {
    expect(Array.from(addLoraBranch(branch, [1, 1], linear(w, [1, 1], 2, 2), null))).toEqual([4, 5]);
  });
  it('merged weight is W + scale * B A', () => {
    expect(Array.from(mergedWeight(w, branch))).toEqual([2, 2, 1, 4]);
  });
  it('DoRA rescales each output row to magnitude / ||W + scale B A||', () => {
    // magnitude [1, 1]; row norms of [[2, 2], [1, 4]] are sqrt(8) and sqrt(17): y = [4 / sqrt 8, 5 / sqrt 17].
    const dora = { ...branch, doraScale: Float64Array.of(1 / Math.sqrt(8), 1 / Math.sqrt(17)) };
    const y = addLoraBranch(dora, [1, 1], linear(w, [1, 1], 2, 2), null);
    expect(y[0]).toBeCloseTo(1.414213562373095, 14);
    expect(y[1]).toBeCloseTo(1.212678125181665, 14);
  });
  it('scaling is alpha / r, or alpha / sqrt(r) with use_rslora (PEFT LoraLayer.update_layer)', () => {
    expect(loraScale(lora('lora:r=4,alpha=16'), 'model.layers.0.self_attn.q_proj')).toBe(4);
    expect(loraScale(lora('lora:r=4,alpha=16,rslora=true'), 'model.layers.0.self_attn.q_proj')).toBe(8);
  });
});

describe('LoRA on the tiny models', () => {
  for (const [id, model] of Object.entries(models)) {
    it(`${id}: B = 0 (PEFT's init) leaves logits exactly unchanged, merged and unmerged`, () => {
      const base = referenceLogits(model, ids);
      for (const mode of ['merged', 'unmerged'] as const) {
        const adapted = applyPeftToReference(model, 'lora:r=4,alpha=8,targets=all-linear', { init: 'zero', mode });
        expect(maxDiff(referenceLogits(adapted, ids), base)).toBe(0);
      }
    });

    it(`${id}: merged equals unmerged within 1e-9 with random A and B (all-linear, DoRA, rslora)`, () => {
      for (const spec of ['lora:r=4,alpha=16,targets=all-linear', 'lora:r=2,alpha=4,targets=q_proj+v_proj,dora=true', 'lora:r=8,alpha=8,rslora=true,targets=o_proj+down_proj']) {
        const merged = referenceLogits(applyPeftToReference(model, spec, { mode: 'merged', seed: 3 }), ids);
        const unmerged = referenceLogits(applyPeftToReference(model, spec, { mode: 'unmerged', seed: 3 }), ids);
        expect(maxDiff(merged, unmerged)).toBeLessThan(1e-9);
        // and the adapter does change the model
        expect(maxDiff(merged, referenceLogits(model, ids))).toBeGreaterThan(1e-4);
      }
    });
  }

  it('does not modify the base model it is applied to', () => {
    const model = models['tiny-llama-3'];
    const q0 = Float32Array.from(model.layers[0]!.q);
    applyPeftToReference(model, 'lora:r=4,targets=q_proj', { mode: 'merged' });
    expect(model.layers[0]!.q).toEqual(q0);
    expect(model.peft).toBeUndefined();
  });

  it('merged mode also folds the weights into the float32 fields graph builders read', () => {
    const model = models['tiny-llama-3'];
    const merged = applyPeftToReference(model, 'lora:r=4,targets=q_proj', { mode: 'merged' });
    const key = 'model.layers.1.self_attn.q_proj';
    expect(Array.from(merged.layers[1]!.q)).toEqual(Array.from(merged.peft!.merged.get(key)!, Math.fround));
  });

  it('DoRA at PEFT init (B = 0, magnitude = ||W||) is the identity to float rounding', () => {
    const model = models['tiny-llama-2'];
    const adapted = applyPeftToReference(model, 'lora:r=4,targets=all-linear,dora=true', { init: 'zero' });
    expect(maxDiff(referenceLogits(adapted, ids), referenceLogits(model, ids))).toBeLessThan(1e-5);
  });

  it('modules_to_save replaces the module with the saved copy', () => {
    const model = models['tiny-llama-3'];
    const adapted = applyPeftToReference(model, 'lora:r=2,targets=q_proj,save=lm_head', { seed: 5 });
    expect(adapted.lmHead).not.toBe(model.lmHead);
    const hidden = referenceHidden(adapted, ids);
    const logits = referenceLogits(adapted, ids);
    expect(maxDiff([logits[3]!], [linear(adapted.lmHead, hidden[3]!, model.text.vocabSize, model.text.hiddenSize)])).toBe(0);
    expect(maxDiff([logits[3]!], [linear(model.lmHead, hidden[3]!, model.text.vocabSize, model.text.hiddenSize)])).toBeGreaterThan(1e-3);
  });
});

describe('HF PEFT adapter directories', () => {
  const model = models['tiny-llama-3'];
  const spec = lora('lora:r=4,alpha=8,targets=q_proj+v_proj+down_proj,dora=true');

  it('writeLoraAdapter writes PEFT names; reading the directory gives the spec-string adapter', () => {
    const dir = join(tmp, 'adapter-ok');
    writeLoraAdapter(dir, spec, model.text, 11, { base: model });
    const config = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
    expect(config).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 8, use_dora: true, target_modules: ['q_proj', 'v_proj', 'down_proj'] });
    const names = randomLoraTensors(spec, model.text, 11, { base: model }).map((t) => t.name);
    expect(names).toContain('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
    expect(names).toContain('base_model.model.model.layers.1.mlp.down_proj.lora_B.weight');
    expect(names).toContain('base_model.model.model.layers.0.self_attn.v_proj.lora_magnitude_vector');
    const fromDir = referenceLogits(applyPeftToReference(model, dir), ids);
    const fromSpec = referenceLogits(applyPeftToReference(model, spec.source, { seed: 11 }), ids);
    expect(maxDiff(fromDir, fromSpec)).toBe(0);
  });

  /** Writes an adapter for `spec`, then lets `edit` change its tensors before saving. */
  const brokenAdapter = (name: string, edit: (t: { name: string; dtype: 'F32' | 'I32'; shape: number[]; bytes: Uint8Array }[]) => void, configEdit?: (c: Record<string, unknown>) => void) => {
    const dir = join(tmp, name);
    writeLoraAdapter(dir, spec, model.text, 1, { base: model });
    const tensors = randomLoraTensors(spec, model.text, 1, { base: model }).map((t) => ({ name: t.name, dtype: 'F32' as 'F32' | 'I32', shape: t.shape, bytes: f32Bytes(t.data) }));
    edit(tensors);
    writeRawSafetensors(join(dir, 'adapter_model.safetensors'), tensors);
    if (configEdit) {
      const config = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
      configEdit(config);
      writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify(config));
    }
    return dir;
  };
  const qA = `${PEFT_KEY_PREFIX}model.layers.0.self_attn.q_proj.lora_A.weight`;

  it('a tensor of the wrong shape is an InputError naming it', () => {
    const dir = brokenAdapter('bad-shape', (ts) => {
      const t = ts.find((x) => x.name === qA)!;
      t.shape = [2, t.shape[1]! * 2];
    });
    expect(() => applyPeftToReference(model, dir)).toThrow(InputError);
    expect(() => applyPeftToReference(model, dir)).toThrow(/lora_A\.weight" has shape \[2, 128\], expected \[4, 64\]/);
  });

  it('a rank in adapter_config.json that the tensors do not have is an InputError naming the tensor', () => {
    const dir = brokenAdapter('bad-rank', () => {}, (c) => (c.r = 8));
    expect(() => applyPeftToReference(model, dir)).toThrow(/q_proj\.lora_A\.weight" has shape \[4, 64\], expected \[8, 64\]/);
  });

  it('a missing tensor is an InputError naming it', () => {
    const dir = brokenAdapter('missing', (ts) => ts.splice(ts.findIndex((x) => x.name === qA), 1));
    expect(() => applyPeftToReference(model, dir)).toThrow(/missing adapter tensor "base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight"/);
  });

  it('a tensor of integer dtype is an InputError naming it', () => {
    const dir = brokenAdapter('bad-dtype', (ts) => (ts.find((x) => x.name === qA)!.dtype = 'I32'));
    expect(() => applyPeftToReference(model, dir)).toThrow(/q_proj\.lora_A\.weight" has dtype I32; expected F32, F16 or BF16/);
  });

  it('an adapter with more layers than the model is an InputError naming the extra tensor', () => {
    const dir = brokenAdapter('extra-layer', (ts) => ts.push({ ...ts[0]!, name: ts[0]!.name.replace('layers.0.', 'layers.30.') }));
    expect(() => applyPeftToReference(model, dir)).toThrow(/"base_model\.model\.model\.layers\.30\.self_attn\.q_proj\.lora_A\.weight" matches no LoRA module/);
  });

  it('a hidden size that differs from the model (adapter for another base) is an InputError', () => {
    const other = lora('lora:r=4,alpha=8,targets=q_proj');
    const dir = join(tmp, 'other-base');
    const bigger = { ...model.text, hiddenSize: 128, headDim: 32 };
    writeLoraAdapter(dir, other, bigger, 1);
    expect(() => applyPeftToReference(model, dir)).toThrow(/expected \[4, 64\].*another base model/);
  });

  it('a directory without adapter_model.safetensors, an unknown peft_type and unsupported methods are InputErrors', () => {
    const dir = join(tmp, 'no-weights');
    writeLoraAdapter(dir, spec, model.text, 1, { base: model });
    rmSync(join(dir, 'adapter_model.safetensors'));
    expect(() => applyPeftToReference(model, dir)).toThrow(/adapter_model\.safetensors: not found/);
    writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ peft_type: 'IA3' }));
    expect(() => applyPeftToReference(model, dir)).toThrow(/unsupported peft_type "IA3" \(supported: LORA, ADAPTION_PROMPT\)/);
    expect(() => applyPeftToReference(model, 'excitor:layers=1')).toThrow(InputError);
    expect(() => applyPeftToReference(model, 'lora:r=2,bias=all')).toThrow(/bias="all" is not supported/);
  });
});
