// The tensors of a tiny LLaMA 3.2 Vision checkpoint (`MllamaForConditionalGeneration`), with the
// names and shapes of the released HF checkpoints (`vision_model.*`, `multi_modal_projector.*`,
// `language_model.model.*`, `language_model.lm_head.weight`), from transformers modeling_mllama.py.
// runners/tiny.ts generates the values from these specs, as for the text-only tiny models.
//
// Init differs from HF `_init_weights` on purpose for the scalar gates: HF starts the tile /
// position gates and the cross-attention gates at 0, which would switch those paths off; the
// fixture sets every gate to 1 (tanh 1 ≈ 0.76) so each path contributes to the output.
import type { ModelArch } from '../harness/arch.ts';
import { layerPrefix, type TensorSpec } from './hf/tensor-names.ts';
import { mllamaVisionArch, patchesPerTile } from './vision/mllama-reference.ts';

/** Specs of every tensor of an mllama checkpoint (`arch.vision` must be its vision_config). */
export function mllamaTensorSpecs(arch: ModelArch): TensorSpec[] {
  if (arch.modelType !== 'mllama' || !arch.vision) throw new Error('mllamaTensorSpecs: not an mllama config');
  const specs: TensorSpec[] = [];
  const normal = (name: string, shape: number[]) => specs.push({ name, shape, init: 'normal' });
  const ones = (name: string, shape: number[]) => specs.push({ name, shape, init: 'ones' });
  const zeros = (name: string, shape: number[]) => specs.push({ name, shape, init: 'zeros' });

  const v = mllamaVisionArch(arch.vision);
  const rawRatios = arch.vision.supported_aspect_ratios;
  const ratioRows = (Array.isArray(rawRatios) ? rawRatios.length : 8) + 1; // id 0 is padding
  const h = v.hiddenSize;
  const P = patchesPerTile(v);
  const vp = 'vision_model';
  normal(`${vp}.patch_embedding.weight`, [h, v.numChannels, v.patchSize, v.patchSize]);
  normal(`${vp}.class_embedding`, [h]);
  ones(`${vp}.gated_positional_embedding.gate`, [1]);
  normal(`${vp}.gated_positional_embedding.embedding`, [P, h]);
  normal(`${vp}.gated_positional_embedding.tile_embedding.weight`, [ratioRows, v.maxNumTiles * P * h]);
  for (const which of ['pre', 'post']) {
    normal(`${vp}.${which}_tile_positional_embedding.embedding.weight`, [ratioRows, v.maxNumTiles * h]);
    ones(`${vp}.${which}_tile_positional_embedding.gate`, [1]);
  }
  for (const ln of ['layernorm_pre', 'layernorm_post']) {
    ones(`${vp}.${ln}.weight`, [h]);
    zeros(`${vp}.${ln}.bias`, [h]);
  }
  const encoderLayer = (p: string, gated: boolean) => {
    for (const proj of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) normal(`${p}.self_attn.${proj}.weight`, [h, h]);
    normal(`${p}.mlp.fc1.weight`, [v.intermediateSize, h]);
    zeros(`${p}.mlp.fc1.bias`, [v.intermediateSize]);
    normal(`${p}.mlp.fc2.weight`, [h, v.intermediateSize]);
    zeros(`${p}.mlp.fc2.bias`, [h]);
    for (const ln of ['input_layernorm', 'post_attention_layernorm']) {
      ones(`${p}.${ln}.weight`, [h]);
      zeros(`${p}.${ln}.bias`, [h]);
    }
    if (gated) {
      ones(`${p}.gate_attn`, [1]);
      ones(`${p}.gate_ffn`, [1]);
    }
  };
  for (let i = 0; i < v.numLayers; i++) encoderLayer(`${vp}.transformer.layers.${i}`, false);
  for (let i = 0; i < v.numGlobalLayers; i++) encoderLayer(`${vp}.global_transformer.layers.${i}`, true);

  const t = arch.text;
  normal('multi_modal_projector.weight', [t.hiddenSize, v.visionOutputDim]);
  zeros('multi_modal_projector.bias', [t.hiddenSize]);

  // MllamaTextModel: embed_tokens has vocab_size + 8 rows (the image and reserved special tokens).
  const th = t.hiddenSize;
  const hd = t.headDim;
  const qDim = t.numHeads * hd;
  const kvDim = t.numKvHeads * hd;
  normal('language_model.model.embed_tokens.weight', [t.vocabSize + t.extraEmbeddingRows, th]);
  for (let i = 0; i < t.numLayers; i++) {
    const p = `language_model.${layerPrefix(i)}`;
    const attn = t.crossAttentionLayers.includes(i) ? 'cross_attn' : 'self_attn';
    normal(`${p}.${attn}.q_proj.weight`, [qDim, th]);
    normal(`${p}.${attn}.k_proj.weight`, [kvDim, th]);
    normal(`${p}.${attn}.v_proj.weight`, [kvDim, th]);
    normal(`${p}.${attn}.o_proj.weight`, [th, qDim]);
    if (attn === 'cross_attn') {
      ones(`${p}.cross_attn.q_norm.weight`, [hd]);
      ones(`${p}.cross_attn.k_norm.weight`, [hd]);
      ones(`${p}.cross_attn_attn_gate`, [1]);
      ones(`${p}.cross_attn_mlp_gate`, [1]);
    }
    ones(`${p}.input_layernorm.weight`, [th]);
    ones(`${p}.post_attention_layernorm.weight`, [th]);
    normal(`${p}.mlp.gate_proj.weight`, [t.intermediateSize, th]);
    normal(`${p}.mlp.up_proj.weight`, [t.intermediateSize, th]);
    normal(`${p}.mlp.down_proj.weight`, [th, t.intermediateSize]);
  }
  ones('language_model.model.norm.weight', [th]);
  normal('language_model.lm_head.weight', [t.vocabSize, th]);
  return specs;
}
