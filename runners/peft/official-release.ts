// LLaMA-Adapter V1 and V2 in the official release checkpoint layouts. V1 (OpenGVLab/LLaMA-Adapter,
// alpaca_finetuning_v1/extract_adapter_from_checkpoint.py; loaded by llama/model.py with
// load_state_dict(strict=False)), a torch .pth holding:
//   adapter_query.weight      [adapter_len * adapter_layer, dim]  (nn.Embedding; layer i of the top
//                              adapter_layer reads rows [i * len, (i + 1) * len))
//   layers.N.attention.gate   [1, n_heads, 1, 1]  for every layer N (zeros where no prompt is used)
// The released 7B adapter uses adapter_layer = 30, adapter_len = 10. Its inference forward
// (llama/model.py Attention.forward) adds gate * softmax(q K_p^T / sqrt(d)) V_p to the heads before
// wo, gate used as is (the fine-tuning code in alpaca_finetuning_v1 applies tanh at one commit; the
// release is read as the inference code reads it).
import { ADAPTER_V1_DEFAULTS, officialReleaseSpec, type AdapterV2Spec } from './spec/index.ts';
import { InputError } from '../../results/errors.ts';
import type { ReferenceModel } from '../reference-weights.ts';
import type { PthTensor } from '../torch/pth.ts';
import { applyAdapterV2, officialAdapterV2Name } from './adapter-v2.ts';
import { adaptedLayers } from './adaption-prompt.ts';
import { selfAttentionLayers } from './spec/modules.ts';
import { extendPeft, type AdaptionPrompt } from './branch.ts';
import { memoryAdapterTensors, type LoraMode, type NamedTensor } from './lora.ts';

const GATE = /^layers\.(\d+)\.attention\.gate$/;

export interface OfficialAdapterV1Options {
  /** adapter_layer: how many top layers read prompts (not stored in the checkpoint). Default 30, the release's. */
  layers?: number;
}


/**
 * Applies an official LLaMA-Adapter V2 checkpoint (llama_adapter_v2_chat65b/llama/model.py names:
 * `layers.N.attention.wq_bias`, `..._scale`, `layers.N.attention_norm.weight`, `adapter_query.weight`,
 * `layers.N.attention.gate` on every layer) through applyAdapterV2. Which of bias / scale / norm were
 * trained is read from the tensors present; gates of layers without prompts are unused and dropped.
 */
export function applyOfficialAdapterV2(model: ReferenceModel, tensors: Map<string, PthTensor>, path: string, mode: LoraMode, options: OfficialAdapterV1Options = {}): ReferenceModel {
  // Which of bias / scale / norm / prompts / visual path, as `params` reads the same file.
  const { spec, layers } = officialReleaseSpec(tensors, path, options.layers ?? null, path);
  const adapted = new Set(adaptedLayers(model, layers, 'adapter-v2'));
  const renamed: NamedTensor[] = [];
  for (const [name, t] of tensors) {
    const ours = officialAdapterV2Name(name);
    if (ours === null) throw new InputError(`${path}: tensor "${name}" is not part of an official LLaMA-Adapter V2 checkpoint (expected layers.N.attention.wX_bias/_scale, feed_forward.wX_bias/_scale, *_norm.weight, attention.gate, adapter_query.weight, or the visual path's clip_proj / visual_query / visual_blocks / visual_proj)`);
    const gate = /^layers\.(\d+)\.attention\.gate$/.exec(name);
    // The release keeps a gate on every layer; only the adapted layers use theirs.
    if (gate && !adapted.has(Number(gate[1]))) continue;
    renamed.push({ name: ours, shape: t.shape, data: t.data });
  }
  return applyAdapterV2(model, spec as AdapterV2Spec, memoryAdapterTensors(path, renamed), mode);
}

/** Applies an official LLaMA-Adapter V1 checkpoint (tensors from runners/torch/pth.ts readPth) to a copy of `model`. */
export function applyOfficialAdapterV1(model: ReferenceModel, tensors: Map<string, PthTensor>, path: string, options: OfficialAdapterV1Options = {}): ReferenceModel {
  const { hiddenSize: h, numHeads } = model.text;
  // mllama: prompts go to the top self-attention layers; `layers.N` names count every decoder layer.
  const selfLayers = selfAttentionLayers(model.text);
  const n = selfLayers.length;
  const total = model.text.numLayers;
  const query = tensors.get('adapter_query.weight');
  if (!query) throw new InputError(`${path}: no "adapter_query.weight"; not an official LLaMA-Adapter V1 checkpoint (expected adapter_query.weight and layers.N.attention.gate)`);
  if (query.shape.length !== 2 || query.shape[1] !== h) {
    throw new InputError(`${path}: adapter_query.weight has shape [${query.shape.join(', ')}], expected [len * layers, ${h}] (adapter made for a model with another hidden size)`);
  }
  const layers = options.layers ?? ADAPTER_V1_DEFAULTS.layers;
  if (layers < 1 || layers > n) {
    throw new InputError(`${path}: adapter_layer ${layers} does not fit this model's ${n} decoder layers; pass the adapter's layer count (the release uses 30 on LLaMA-7B)`);
  }
  const rows = query.shape[0]!;
  if (rows % layers !== 0) throw new InputError(`${path}: adapter_query.weight has ${rows} rows, not a multiple of adapter_layer ${layers}; pass the adapter's layer count`);
  const len = rows / layers;
  const prompts = new Map(model.peft?.adaptionPrompts);
  const gates = new Map<number, Float32Array>();
  for (const [name, t] of tensors) {
    if (name === 'adapter_query.weight') continue;
    const m = GATE.exec(name);
    if (!m) throw new InputError(`${path}: tensor "${name}" is not part of an official LLaMA-Adapter V1 checkpoint (expected adapter_query.weight and layers.N.attention.gate)`);
    const layer = Number(m[1]);
    if (layer >= total) throw new InputError(`${path}: "${name}" names layer ${layer}, but the model has ${total} decoder layers (adapter made for another base model)`);
    if (t.shape.join(',') !== `1,${numHeads},1,1`) throw new InputError(`${path}: "${name}" has shape [${t.shape.join(', ')}], expected [1, ${numHeads}, 1, 1] (adapter made for a model with another head count)`);
    gates.set(layer, t.data);
  }
  for (let i = 0; i < layers; i++) {
    const layer = selfLayers[n - layers + i]!;
    const gate = gates.get(layer);
    if (!gate) throw new InputError(`${path}: missing "layers.${layer}.attention.gate" for adapted layer ${layer}`);
    const prompt = query.data.subarray(i * len * h, (i + 1) * len * h);
    prompts.set(layer, { prompt, len, gate, gateTanh: false, beforeOProj: true } satisfies AdaptionPrompt);
  }
  const peft = { ...extendPeft(model.peft, `adapter-v1 official layers=${layers} len=${len}`), adaptionPrompts: prompts };
  return { ...model, peft };
}
