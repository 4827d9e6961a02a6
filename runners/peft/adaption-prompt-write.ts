// Random LLaMA-Adapter V1 adapters in HF PEFT's ADAPTION_PROMPT directory format, for tests and
// fixtures: adapter_config.json as AdaptionPromptConfig.save_pretrained writes it, and the
// `adaption_prompt` / `adaption_gate` tensors of the top `layers` layers.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AdapterV1Spec } from './spec/index.ts';
import { f32Bytes, writeRawSafetensors } from '../quant/safetensors-raw.ts';
import type { ReferenceModel } from '../reference-weights.ts';
import { randomAdaptionPromptTensors } from './adaption-prompt.ts';
import { ADAPTER_WEIGHTS_FILE } from './lora.ts';

export function writeAdaptionPromptAdapter(dir: string, spec: AdapterV1Spec, model: ReferenceModel, seed: number, init: 'random' | 'zero' = 'random'): void {
  mkdirSync(dir, { recursive: true });
  // PEFT's format has one scalar gate per layer; the per-head gate is the official release's.
  const tensors = randomAdaptionPromptTensors({ ...spec, gate: 'scalar' }, model, seed, init);
  writeRawSafetensors(join(dir, ADAPTER_WEIGHTS_FILE), tensors.map((t) => ({ name: t.name, dtype: 'F32', shape: t.shape, bytes: f32Bytes(t.data) })));
  const config = { peft_type: 'ADAPTION_PROMPT', task_type: 'CAUSAL_LM', base_model_name_or_path: null, inference_mode: true, adapter_len: spec.len, adapter_layers: spec.layers, target_modules: 'self_attn' };
  writeFileSync(join(dir, 'adapter_config.json'), `${JSON.stringify(config, null, 2)}\n`);
}
