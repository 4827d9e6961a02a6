// Random (or zero-B) LoRA adapters in HF PEFT's on-disk format, for tests, fixtures and `--peft
// lora:...` spec strings without an adapter directory. Initialisation follows PEFT's
// LoraLayer.reset_lora_parameters (init_lora_weights=True): lora_A ~ kaiming_uniform(a=sqrt(5)), i.e.
// U(-1/sqrt(in), 1/sqrt(in)); lora_B = 0. `init: 'random'` also draws B ~ N(0, 0.02²) (LLaMA's
// initializer_range) so the adapter changes the model, as a trained one would. DoRA's magnitude is
// PEFT's init, ||W + scale B A|| per output row, so it needs the base weights.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TextArch } from '../arch.ts';
import { moduleInstances, loraRankFor, resolveLoraTargets, type LoraSpec } from './spec/index.ts';
import { seededNormal, seededUniform } from '../tiny.ts';
import { streamSeed } from './seed.ts';
import type { ReferenceModel } from '../reference-weights.ts';
import { writeRawSafetensors, f32Bytes } from '../quant/safetensors-raw.ts';
import { doraRowScale } from './branch.ts';
import { ADAPTER_WEIGHTS_FILE, loraScale, peftKeyPrefix, type NamedTensor } from './lora.ts';
import { referenceModules } from './modules.ts';

export type AdapterInit = 'random' | 'zero';

export interface RandomAdapterOptions {
  /** 'zero': PEFT's own init (B = 0, so the adapter is the identity); 'random' (default): B drawn too. */
  init?: AdapterInit;
  /** Base weights: needed for DoRA magnitudes and modules_to_save copies. */
  base?: ReferenceModel;
}

/** The adapter_config.json PEFT's LoraConfig.save_pretrained writes for `spec`. */
export function loraAdapterConfig(spec: LoraSpec): Record<string, unknown> {
  const t = spec.targets;
  return {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: null,
    inference_mode: true,
    r: spec.r,
    lora_alpha: spec.alpha,
    lora_dropout: spec.dropout,
    target_modules: t === 'all-linear' ? 'all-linear' : Array.isArray(t) ? t : t.regex,
    exclude_modules: spec.excludeModules === null ? null : Array.isArray(spec.excludeModules) ? spec.excludeModules : spec.excludeModules.regex,
    use_rslora: spec.rslora,
    use_dora: spec.dora,
    fan_in_fan_out: false,
    bias: spec.bias,
    lora_bias: spec.loraBias,
    modules_to_save: spec.modulesToSave.length > 0 ? spec.modulesToSave : null,
    layers_to_transform: spec.layersToTransform,
    layers_pattern: spec.layersPattern,
    rank_pattern: spec.rankPattern,
    alpha_pattern: {},
  };
}

/** The tensors of a random PEFT LoRA adapter for `spec` on `arch`, deterministic in `seed`. */
export function randomLoraTensors(spec: LoraSpec, arch: TextArch, seed: number, options: RandomAdapterOptions = {}): NamedTensor[] {
  const init = options.init ?? 'random';
  const out: NamedTensor[] = [];
  const stream = (name: string) => streamSeed(seed, name);
  const baseSlots = options.base ? referenceModules(options.base) : null;
  for (const m of resolveLoraTargets(spec, arch)) {
    const r = loraRankFor(spec, m.key);
    const prefix = `${peftKeyPrefix(arch)}${m.key}`;
    const bound = 1 / Math.sqrt(m.inFeatures);
    const uniform = seededUniform(stream(`${prefix}.lora_A.weight`));
    const a = Float32Array.from({ length: r * m.inFeatures }, () => (2 * uniform() - 1) * bound);
    const b = init === 'zero' ? new Float32Array(m.outFeatures * r) : seededNormal(stream(`${prefix}.lora_B.weight`), m.outFeatures * r, 0.02);
    out.push({ name: `${prefix}.lora_A.weight`, shape: [r, m.inFeatures], data: a });
    out.push({ name: `${prefix}.lora_B.weight`, shape: [m.outFeatures, r], data: b });
    if (spec.dora) {
      const slot = baseSlots?.get(m.key);
      if (!slot) throw new Error(`randomLoraTensors: DoRA needs the base weights of ${m.key} (pass options.base)`);
      const branch = { a, b, r, inFeatures: m.inFeatures, outFeatures: m.outFeatures, scale: loraScale(spec, m.key) };
      const ones = new Float64Array(m.outFeatures).fill(1);
      // 1 / (1 / ||W + sBA||) = the row norm, PEFT's initial magnitude.
      const magnitude = Float32Array.from(doraRowScale(slot.get(), branch, ones), (x) => 1 / x);
      out.push({ name: `${prefix}.lora_magnitude_vector`, shape: [m.outFeatures], data: magnitude });
    }
  }
  for (const name of spec.modulesToSave) {
    const matches = moduleInstances(arch).filter((m) => m.key === name || m.key.endsWith(`.${name}`));
    for (const m of matches) {
      const slot = baseSlots?.get(m.key);
      if (!slot) throw new Error(`randomLoraTensors: modules_to_save needs the base weights of ${m.key} (pass options.base)`);
      const w = Float32Array.from(slot.get());
      if (init === 'random') {
        const noise = seededNormal(stream(`${m.key}.weight`), w.length, 0.02);
        for (let i = 0; i < w.length; i++) w[i] = w[i]! + noise[i]!;
      }
      out.push({ name: `${peftKeyPrefix(arch)}${m.key}.weight`, shape: m.kind === 'norm' ? [m.outFeatures] : [slot.out, slot.inp], data: w });
    }
  }
  return out;
}

/** Writes a random PEFT-format LoRA adapter directory (adapter_config.json + adapter_model.safetensors). */
export function writeLoraAdapter(dir: string, spec: LoraSpec, arch: TextArch, seed: number, options: RandomAdapterOptions = {}): void {
  mkdirSync(dir, { recursive: true });
  const tensors = randomLoraTensors(spec, arch, seed, options);
  writeRawSafetensors(join(dir, ADAPTER_WEIGHTS_FILE), tensors.map((t) => ({ name: t.name, dtype: 'F32', shape: t.shape, bytes: f32Bytes(t.data) })));
  writeFileSync(join(dir, 'adapter_config.json'), `${JSON.stringify(loraAdapterConfig(spec), null, 2)}\n`);
}
