// LoRA / DoRA adapters on the reference model, read the way HF PEFT saves them
// (`PeftModel.save_pretrained`: adapter_config.json + adapter_model.safetensors):
//   base_model.model.<module>.lora_A.weight        [r, in_features]
//   base_model.model.<module>.lora_B.weight        [out_features, r]
//   base_model.model.<module>.lora_magnitude_vector [out_features]   (use_dora; save_and_load.py strips
//                                                   the ".default.weight" of the DoRA module)
//   base_model.model.<module>.weight               modules_to_save copies (ModulesToSaveWrapper)
// Targets are resolved exactly as harness/peft counts them (PEFT's target matching). Scaling is
// PEFT's LoraLayer.update_layer: lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora, with
// rank_pattern / alpha_pattern per module. fan_in_fan_out only concerns GPT-2's Conv1D: PEFT resets it
// to False on nn.Linear targets (lora/layer.py Linear.__init__ warns "Setting fan_in_fan_out to False"),
// and every LLaMA target is an nn.Linear, so it is accepted and has no effect here.
import { SafetensorsFile } from '../hf/safetensors.ts';
import { InputError } from '../../results/errors.ts';
import { loraRankFor, resolveLoraTargets } from './spec/index.ts';
import type { LoraSpec } from './spec/index.ts';
import type { TextArch } from '../arch.ts';
import type { ReferenceModel } from '../reference-weights.ts';
import { doraRowScale, extendPeft, mergedWeight, type LoraBranch, type ReferencePeft } from './branch.ts';
import { cloneModelShallow, referenceModules, type ModuleSlot } from './modules.ts';

export type LoraMode = 'merged' | 'unmerged';

/** PEFT prefixes every saved key with the PeftModel's `base_model.model.` path. */
export const PEFT_KEY_PREFIX = 'base_model.model.';

/**
 * The prefix of this model's module keys in a saved adapter. An mllama adapter is made on
 * MllamaForConditionalGeneration (transformers 4.45-4.51), whose text model is `language_model`
 * (an MllamaForCausalLM): `base_model.model.language_model.model.layers.N.self_attn.q_proj`.
 */
export function peftKeyPrefix(text: TextArch): string {
  return text.crossAttentionLayers.length > 0 ? `${PEFT_KEY_PREFIX}language_model.` : PEFT_KEY_PREFIX;
}
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';

/** The tensors of an adapter, from a safetensors file or from memory (random adapters). */
export interface AdapterTensors {
  /** The file (or spec string) the tensors come from, named in errors. */
  path: string;
  names(): string[];
  info(name: string): { dtype: string; shape: number[] } | undefined;
  readFloat32(name: string): Float32Array;
}

export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export function memoryAdapterTensors(path: string, tensors: readonly NamedTensor[]): AdapterTensors {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  return {
    path,
    names: () => [...byName.keys()],
    info: (name) => {
      const t = byName.get(name);
      return t && { dtype: 'F32', shape: t.shape };
    },
    readFloat32: (name) => byName.get(name)!.data,
  };
}

export function fileAdapterTensors(file: SafetensorsFile): AdapterTensors {
  return {
    path: file.path,
    names: () => [...file.tensors.keys()],
    info: (name) => file.tensors.get(name),
    readFloat32: (name) => file.readFloat32(name),
  };
}

/** `get_pattern_key`: the first pattern with re.match(rf"(.*\.)?({pattern})$", key). */
function patternValue(patterns: Record<string, number>, key: string): number | undefined {
  for (const [pattern, value] of Object.entries(patterns)) {
    if (new RegExp(`^(.*\\.)?(${pattern})$`).test(key)) return value;
  }
  return undefined;
}

export interface LoraExtras {
  /** adapter_config.json `alpha_pattern` (not part of PeftSpec: it changes no parameter count). */
  alphaPattern?: Record<string, number>;
}

/** The scale PEFT multiplies B A by on module `key`. */
export function loraScale(spec: LoraSpec, key: string, extras: LoraExtras = {}): number {
  const r = loraRankFor(spec, key);
  const alpha = patternValue(extras.alphaPattern ?? {}, key) ?? spec.alpha;
  return spec.rslora ? alpha / Math.sqrt(r) : alpha / r;
}

/** Reads a float tensor, checking that it exists, is floating point and has the expected shape. */
function readChecked(tensors: AdapterTensors, name: string, shape: readonly number[], why: string): Float32Array {
  const info = tensors.info(name);
  if (!info) throw new InputError(`${tensors.path}: missing adapter tensor "${name}" (expected ${why}; was the adapter saved by PEFT for this model?)`);
  if (!['F32', 'F16', 'BF16'].includes(info.dtype)) {
    throw new InputError(`${tensors.path}: adapter tensor "${name}" has dtype ${info.dtype}; expected F32, F16 or BF16 (re-save the adapter in floating point)`);
  }
  if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
    throw new InputError(`${tensors.path}: adapter tensor "${name}" has shape [${info.shape.join(', ')}], expected [${shape.join(', ')}] (${why}; adapter made for another base model or rank?)`);
  }
  return tensors.readFloat32(name);
}

function unsupported(spec: LoraSpec, tensors: AdapterTensors): void {
  const fail = (what: string) => {
    throw new InputError(`${tensors.path}: ${what} is not supported by the reference forward yet (supported: LoRA/DoRA on Linear modules, modules_to_save)`);
  };
  if (spec.targetParameters.length > 0) fail('target_parameters (LoRA on Llama 4 routed experts)');
  if (spec.loraBias) fail('lora_bias');
  if (spec.bias !== 'none') fail(`bias="${spec.bias}"`);
}

/**
 * Applies a LoRA adapter to `model` (which is not modified) and returns the adapted model: merged
 * (W + scale B A folded into the weights) or unmerged (side branches the reference forward adds).
 */
export function applyLora(model: ReferenceModel, spec: LoraSpec, tensors: AdapterTensors, mode: LoraMode, extras: LoraExtras = {}): ReferenceModel {
  unsupported(spec, tensors);
  const out = cloneModelShallow(model);
  const slots = referenceModules(out);
  const targets = resolveLoraTargets(spec, model.text);
  const expected = new Set<string>();
  const peft = extendPeft(model.peft, `${spec.method} ${mode}`);
  for (const target of targets) {
    const slot = slots.get(target.key);
    if (!slot || slot.kind !== 'linear') {
      throw new InputError(`${tensors.path}: LoRA on ${target.key} is not supported by the reference forward (it adapts Linear modules only)`);
    }
    const r = loraRankFor(spec, target.key);
    const base = `${peftKeyPrefix(model.text)}${target.key}`;
    const aName = `${base}.lora_A.weight`;
    const bName = `${base}.lora_B.weight`;
    expected.add(aName).add(bName);
    const a = readChecked(tensors, aName, [r, slot.inp], `lora_A of ${target.key}: [r=${r}, in_features=${slot.inp}]`);
    const b = readChecked(tensors, bName, [slot.out, r], `lora_B of ${target.key}: [out_features=${slot.out}, r=${r}]`);
    const plain = { a, b, r, inFeatures: slot.inp, outFeatures: slot.out, scale: loraScale(spec, target.key, extras) };
    let doraScale: Float64Array | null = null;
    if (spec.dora) {
      const mName = `${base}.lora_magnitude_vector`;
      expected.add(mName);
      const magnitude = readChecked(tensors, mName, [slot.out], `DoRA magnitude of ${target.key}: [out_features=${slot.out}]`);
      // PEFT normalises by the (dequantized) base weight the adapter sits on.
      doraScale = doraRowScale(slot.get(), plain, magnitude);
    }
    const branch: LoraBranch = { ...plain, doraScale };
    // mllama cross-attention layers read their weights by name, with no PEFT hook: merged (float32) only.
    if (mode === 'unmerged' && !slot.cross) {
      peft.lora.set(target.key, branch);
    } else {
      const merged = mergedWeight(peft.merged.get(target.key) ?? slot.get(), branch);
      peft.merged.set(target.key, merged);
      slot.set(Float32Array.from(merged));
    }
  }
  applyModulesToSave(spec, tensors, slots, expected, peft, peftKeyPrefix(model.text));
  const extra = tensors.names().find((n) => !expected.has(n));
  if (extra !== undefined) {
    throw new InputError(`${tensors.path}: adapter tensor "${extra}" matches no LoRA module of this model under adapter_config.json (adapter made for another base model? layer count or target_modules differ)`);
  }
  out.peft = peft;
  return out;
}

/** modules_to_save: PEFT's trained full copy replaces the module (key match: `key.endswith(name)`). */
function applyModulesToSave(spec: LoraSpec, tensors: AdapterTensors, slots: Map<string, ModuleSlot>, expected: Set<string>, peft: ReferencePeft, keyPrefix: string): void {
  for (const name of spec.modulesToSave) {
    const matches = [...slots.values()].filter((s) => s.key === name || s.key.endsWith(`.${name}`));
    if (matches.length === 0) throw new InputError(`${tensors.path}: modules_to_save "${name}" matches no module of this model`);
    for (const slot of matches) {
      const tName = `${keyPrefix}${slot.key}.weight`;
      expected.add(tName);
      const shape = slot.kind === 'norm' ? [slot.out] : [slot.out, slot.inp];
      const w = readChecked(tensors, tName, shape, `modules_to_save copy of ${slot.key}: [${shape.join(', ')}]`);
      slot.set(w);
      peft.merged.delete(slot.key);
      peft.lora.delete(slot.key);
    }
  }
}

/** Opens `<dir>/adapter_model.safetensors`; the caller closes it. */
export function openAdapterFile(path: string): SafetensorsFile {
  return SafetensorsFile.open(path);
}
