// A reference model's weights under their HF checkpoint names, as a TensorSource: what a graph
// builder (runners/ort/llama-graph.ts buildLlamaGraph) reads to build the adapted model. Only what
// lives in the weights can be expressed this way: merged LoRA / DoRA / QLoRA, modules_to_save, V2
// norms and merged scales. Unmerged branches, V2 biases and adaption prompts need graph support.
import { InputError } from '../../results/errors.ts';
import { textTensorSpecs } from '../hf/tensor-names.ts';
import type { ReferenceModel, TensorSource } from '../reference-weights.ts';
import { referenceModules } from './modules.ts';

export function referenceTensorSource(model: ReferenceModel): TensorSource {
  const p = model.peft;
  if (p && (p.lora.size > 0 || p.inputScale.size > 0 || p.extraBias.size > 0 || p.adaptionPrompts.size > 0)) {
    throw new InputError(`${p.label}: unmerged adapter state (LoRA branches, V2 scales/biases, adaption prompts) is not part of the weights; apply with mode 'merged' (LoRA, QLoRA) to build a graph from them`);
  }
  return modelWeightSource(model);
}

/**
 * The weights the model holds (merged adapters, modules_to_save, V2 norms included), ignoring its
 * unmerged PEFT state: the base of an ORT graph that adds that state itself (runners/ort/llama-peft.ts).
 */
export function modelWeightSource(model: ReferenceModel): TensorSource {
  const tensors = new Map<string, Float32Array>();
  for (const slot of referenceModules(model).values()) tensors.set(`${slot.key}.weight`, slot.get());
  model.layers.forEach((l, i) => {
    const attn = `model.layers.${i}.self_attn`;
    const biases: [string, Float32Array | null][] = [['q_proj', l.qBias], ['k_proj', l.kBias], ['v_proj', l.vBias], ['o_proj', l.oBias]];
    for (const [name, b] of biases) if (b) tensors.set(`${attn}.${name}.bias`, b);
    const mlp = `model.layers.${i}.${model.arch.modelType === 'llama4' ? 'feed_forward' : 'mlp'}`;
    const dense = l.mlp ?? l.moe?.shared ?? null;
    const densePrefix = l.mlp ? mlp : `${mlp}.shared_expert`;
    if (dense) {
      for (const [name, b] of [['gate_proj', dense.gateBias], ['up_proj', dense.upBias], ['down_proj', dense.downBias]] as const) if (b) tensors.set(`${densePrefix}.${name}.bias`, b);
    }
    if (l.moe) {
      tensors.set(`${mlp}.experts.gate_up_proj`, l.moe.gateUp);
      tensors.set(`${mlp}.experts.down_proj`, l.moe.down);
    }
  });
  // Tied embeddings: no lm_head tensor in the checkpoint layout.
  if (model.text.tieWordEmbeddings) tensors.delete('lm_head.weight');
  const shapes = new Map(textTensorSpecs(model.arch).map((s) => [s.name, s.shape]));
  return {
    has: (name) => tensors.has(name),
    readFloat32: (name, options) => {
      const data = tensors.get(name);
      if (!data) throw new InputError(`adapted model has no tensor "${name}"`);
      const want = options?.expectShape ?? shapes.get(name);
      const n = want?.reduce((a, b) => a * b, 1);
      if (n !== undefined && n !== data.length) throw new InputError(`adapted model tensor "${name}" has ${data.length} values, expected [${want!.join(', ')}]`);
      return data;
    },
  };
}
