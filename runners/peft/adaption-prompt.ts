// LLaMA-Adapter V1 (Zhang et al. 2023, arXiv 2303.16199) on the reference model, in HF PEFT's
// ADAPTION_PROMPT layout (src/peft/tuners/adaption_prompt): the top `adapter_layers` decoder layers'
// `self_attn` is wrapped by AdaptedAttention, which saves
//   base_model.model.model.layers.N.self_attn.adaption_prompt  [1, adapter_len, hidden]
//   base_model.model.model.layers.N.self_attn.adaption_gate    [1]   (zero-init)
// (get_peft_model_state_dict keeps the parameters whose name starts with "adaption_"). The forward
// (AdaptedAttention.forward, reproduced in runners/reference.ts): the prompt goes through the layer's
// k_proj / v_proj (no RoPE), the rotated queries attend over it with a softmax of its own, the result
// is scaled by the gate, sent through o_proj and added to the attention output. The official release
// (alpaca_finetuning_v1/llama/model.py) has one gate per head, [1, n_heads, 1, 1]; that shape is read too.
import type { AdapterV1Spec } from './spec/index.ts';
import { InputError } from '../../results/errors.ts';
import type { ReferenceModel } from '../reference-weights.ts';
import { seededNormal, seededUniform } from '../tiny.ts';
import { extendPeft, type AdaptionPrompt, type ReferencePeft } from './branch.ts';
import { selfAttentionLayers } from './spec/modules.ts';
import { peftKeyPrefix, type AdapterTensors, type NamedTensor } from './lora.ts';
import { streamSeed } from './seed.ts';

/**
 * The decoder layers PEFT adapts: `parents[-adapter_layers:]` of the modules named `self_attn` (on
 * mllama the cross-attention layers have `cross_attn` instead and are never among them).
 */
export function adaptedLayers(model: ReferenceModel, layers: number, method = 'adapter-v1'): number[] {
  const all = selfAttentionLayers(model.text);
  const n = all.length;
  const kind = model.crossAttention ? 'self-attention' : 'decoder';
  if (layers > n) throw new InputError(`${method} layers=${layers} is more than the model's ${n} ${kind} layers (AdaptionPromptModel rejects it)`);
  return layers === 0 ? [] : all.slice(-layers);
}

const promptName = (model: ReferenceModel, layer: number) => `${peftKeyPrefix(model.text)}model.layers.${layer}.self_attn.adaption_prompt`;
const gateName = (model: ReferenceModel, layer: number) => `${peftKeyPrefix(model.text)}model.layers.${layer}.self_attn.adaption_gate`;

/**
 * Random adaption prompts: prompt ~ N(0, 1) as PEFT's `torch.empty(...).normal_()`; gates 0 (PEFT's
 * init, `init: 'zero'`) or U(-1, 1) (`init: 'random'`). `spec.gate` 'head' gives the official per-head
 * shape [1, n_heads, 1, 1], 'scalar' PEFT's [1].
 */
export function randomAdaptionPromptTensors(spec: AdapterV1Spec, model: ReferenceModel, seed: number, init: 'random' | 'zero' = 'random'): NamedTensor[] {
  const h = model.text.hiddenSize;
  const gateShape = spec.gate === 'head' ? [1, model.text.numHeads, 1, 1] : [1];
  const gateLen = spec.gate === 'head' ? model.text.numHeads : 1;
  return adaptedLayers(model, spec.layers).flatMap((layer) => {
    const uniform = seededUniform(streamSeed(seed, gateName(model, layer)));
    const gate = init === 'zero' ? new Float32Array(gateLen) : Float32Array.from({ length: gateLen }, () => 2 * uniform() - 1);
    return [
      { name: promptName(model, layer), shape: [1, spec.len, h], data: seededNormal(streamSeed(seed, promptName(model, layer)), spec.len * h, 1) },
      { name: gateName(model, layer), shape: gateShape, data: gate },
    ];
  });
}

function readShaped(tensors: AdapterTensors, name: string, shapes: number[][], why: string): Float32Array {
  const info = tensors.info(name);
  if (!info) throw new InputError(`${tensors.path}: missing adapter tensor "${name}" (expected ${why})`);
  if (!['F32', 'F16', 'BF16'].includes(info.dtype)) throw new InputError(`${tensors.path}: adapter tensor "${name}" has dtype ${info.dtype}; expected F32, F16 or BF16`);
  const ok = shapes.some((s) => s.length === info.shape.length && s.every((d, i) => d === info.shape[i]));
  if (!ok) {
    throw new InputError(`${tensors.path}: adapter tensor "${name}" has shape [${info.shape.join(', ')}], expected ${shapes.map((s) => `[${s.join(', ')}]`).join(' or ')} (${why}; adapter made for another base model?)`);
  }
  return tensors.readFloat32(name);
}

/** Adds adaption prompts to a copy of `model` (the base weights are shared, not copied). */
export function applyAdaptionPrompt(model: ReferenceModel, spec: AdapterV1Spec, tensors: AdapterTensors): ReferenceModel {
  const { hiddenSize: h, numHeads } = model.text;
  const prompts = new Map(model.peft?.adaptionPrompts);
  const expected = new Set<string>();
  for (const layer of adaptedLayers(model, spec.layers)) {
    expected.add(promptName(model, layer)).add(gateName(model, layer));
    const prompt = readShaped(tensors, promptName(model, layer), [[1, spec.len, h]], `[1, adapter_len=${spec.len}, hidden=${h}]`);
    const gate = readShaped(tensors, gateName(model, layer), [[1], [1, numHeads, 1, 1]], 'a scalar gate [1] or one per head');
    prompts.set(layer, { prompt, len: spec.len, gate, gateTanh: false, beforeOProj: false } satisfies AdaptionPrompt);
  }
  const extra = tensors.names().find((n) => !expected.has(n));
  if (extra !== undefined) {
    throw new InputError(`${tensors.path}: adapter tensor "${extra}" is not an adaption prompt of the top ${spec.layers} of this model's ${selfAttentionLayers(model.text).length} self-attention layers (adapter made for another base model?)`);
  }
  const peft: ReferencePeft = { ...extendPeft(model.peft, `adapter-v1 layers=${spec.layers} len=${spec.len}`), adaptionPrompts: prompts };
  return { ...model, peft };
}
