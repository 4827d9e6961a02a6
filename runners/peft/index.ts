// The one entry point that applies a `--peft` argument to a reference model: an HF PEFT adapter
// directory (LoRA / DoRA / QLoRA adapters, LLaMA-Adapter V1 as ADAPTION_PROMPT), or a spec string
// (`lora:r=8,alpha=16`, `qlora`, `adapter-v1:layers=2,len=4`, `adapter-v2`) whose weights are drawn
// from a seed; or an official LLaMA-Adapter V1 / V2 release `.pth` (read by the restricted
// runners/torch/pth.ts). LLaMA-Excitor is not applied yet (its structure could not be verified against the paper).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isOfficialAdapterV2, officialReleaseArg, parsePeft, type PeftSpec } from './spec/index.ts';
import { InputError } from '../../results/errors.ts';
import { quantizeReferenceNf4 } from '../quant/nf4-model.ts';
import type { ReferenceModel } from '../reference-weights.ts';
import { readPth } from '../torch/pth.ts';
import { applyAdaptionPrompt, randomAdaptionPromptTensors } from './adaption-prompt.ts';
import { applyOfficialAdapterV1, applyOfficialAdapterV2 } from './official-release.ts';
import { applyAdapterV2, randomAdapterV2Tensors } from './adapter-v2.ts';
import { ADAPTER_WEIGHTS_FILE, applyLora, fileAdapterTensors, memoryAdapterTensors, openAdapterFile, type AdapterTensors, type LoraExtras, type LoraMode } from './lora.ts';
import { randomLoraTensors, type AdapterInit } from './lora-write.ts';

export type { LoraMode } from './lora.ts';
export type { AdapterInit } from './lora-write.ts';
export { writeLoraAdapter } from './lora-write.ts';
export { writeAdaptionPromptAdapter } from './adaption-prompt-write.ts';

export interface ApplyPeftOptions {
  /** LoRA: fold into the weights ('merged') or keep side branches ('unmerged', default). */
  mode?: LoraMode;
  /** Spec strings only: 'random' (default) draws every adapter weight; 'zero' is PEFT's init (identity). */
  init?: AdapterInit;
  /** Spec strings only: seed of the random adapter weights (default 0). */
  seed?: number;
  /** QLoRA from an adapter directory: quantize the base linears to NF4 first (spec `qlora` always does). */
  quantizeBase?: boolean;
  /** Official LLaMA-Adapter `.pth`: adapter_layer, which the checkpoint does not store (V1 default 30, the release's). */
  officialLayers?: number;
}

function isAdapterDir(arg: string): boolean {
  return existsSync(arg) && (statSync(arg).isDirectory() || arg.endsWith('adapter_config.json'));
}

function adapterDirOf(arg: string): string {
  return statSync(arg).isDirectory() ? arg : join(arg, '..');
}

/** alpha_pattern, which PeftSpec does not carry (it changes no parameter count). */
function loraExtras(dir: string): LoraExtras {
  const raw = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
  const ap = raw.alpha_pattern;
  if (ap == null) return {};
  if (typeof ap !== 'object' || Object.values(ap).some((v) => typeof v !== 'number')) {
    throw new InputError(`${join(dir, 'adapter_config.json')}: alpha_pattern must map module names to numbers`);
  }
  return { alphaPattern: ap as Record<string, number> };
}

function applySpec(model: ReferenceModel, spec: PeftSpec, tensors: AdapterTensors, options: ApplyPeftOptions, extras: LoraExtras): ReferenceModel {
  const mode = options.mode ?? 'unmerged';
  switch (spec.method) {
    case 'lora':
      return applyLora(options.quantizeBase ? quantizeReferenceNf4(model) : model, spec, tensors, mode, extras);
    case 'qlora':
      return applyLora(quantizeReferenceNf4(model), spec, tensors, mode, extras);
    case 'adapter-v1':
      return applyAdaptionPrompt(options.quantizeBase ? quantizeReferenceNf4(model) : model, spec, tensors);
    case 'adapter-v2':
      return applyAdapterV2(model, spec, tensors, mode);
    case 'excitor':
      throw new InputError(`--peft ${spec.method}: not supported by the reference forward yet (supported: lora, qlora, adapter-v1, adapter-v2, or an HF PEFT LORA / ADAPTION_PROMPT adapter directory)`);
  }
}

/**
 * Applies `peftArg` (the `--peft` value) to `model` and returns the adapted model; `model` itself is
 * not modified. Undefined or empty: the model is returned as is.
 */
export function applyPeftToReference(model: ReferenceModel, peftArg: string | undefined, options: ApplyPeftOptions = {}): ReferenceModel {
  if (peftArg === undefined || peftArg.trim() === '') return model;
  const official = officialReleaseArg(peftArg);
  if (official) {
    // An official LLaMA-Adapter release (V1, or V2 when it holds bias/scale/norm or visual tensors);
    // `file.pth:layers=N` gives the adapter_layer, as does the officialLayers option (which wins).
    const tensors = readPth(official.path);
    const base = options.quantizeBase ? quantizeReferenceNf4(model) : model;
    const layers = options.officialLayers ?? official.layers ?? undefined;
    if (isOfficialAdapterV2(tensors.keys())) return applyOfficialAdapterV2(base, tensors, official.path, options.mode ?? 'unmerged', { layers });
    return applyOfficialAdapterV1(base, tensors, official.path, { layers });
  }
  const spec = parsePeft(peftArg);
  if (isAdapterDir(peftArg)) {
    const dir = adapterDirOf(peftArg);
    const weightsPath = join(dir, ADAPTER_WEIGHTS_FILE);
    if (!existsSync(weightsPath)) {
      const bin = existsSync(join(dir, 'adapter_model.bin')) ? ' (found adapter_model.bin: re-save with safe_serialization=True)' : '';
      throw new InputError(`${weightsPath}: not found; an HF PEFT adapter directory holds adapter_config.json and ${ADAPTER_WEIGHTS_FILE}${bin}`);
    }
    const file = openAdapterFile(weightsPath);
    try {
      return applySpec(model, spec, fileAdapterTensors(file), options, spec.method === 'lora' ? loraExtras(dir) : {});
    } finally {
      file.close();
    }
  }
  const seed = options.seed ?? 0;
  const init = options.init ?? 'random';
  const tensors = spec.method === 'lora' || spec.method === 'qlora'
    ? randomLoraTensors(spec, model.text, seed, { init, base: spec.method === 'qlora' ? quantizeReferenceNf4(model) : model })
    : spec.method === 'adapter-v1' ? randomAdaptionPromptTensors(spec, model, seed, init)
    : spec.method === 'adapter-v2' ? randomAdapterV2Tensors(spec, model, seed, init) : [];
  return applySpec(model, spec, memoryAdapterTensors(`--peft ${peftArg}`, tensors), options, {});
}
