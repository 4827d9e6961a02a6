// The tensors of a tiny LLaMA 3.2 Vision checkpoint (`MllamaForConditionalGeneration`), with the
// names and shapes of the released HF checkpoints (`vision_model.*`, `multi_modal_projector.*`,
// `language_model.model.*`, `language_model.lm_head.weight`), from transformers modeling_mllama.py.
// runners/tiny.ts generates the values from these specs, as for the text-only tiny models.
//
// Init differs from HF `_init_weights` on purpose for the scalar gates: HF starts the tile /
// position gates and the cross-attention gates at 0, which would switch those paths off; the
// fixture sets every gate to 1 (tanh 1 ≈ 0.76) so each path contributes to the output.
import type { ModelArch } from './arch.ts';
import { layerPrefix, textTensorSpecs, type TensorSpec } from './hf/tensor-names.ts';
import { mllamaVisionArch, patchesPerTile } from './vision/mllama-reference.ts';
import { llama4VisionArch } from './vision/llama4-reference.ts';

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

// --- LLaMA 4 (issue 10): the tensors of a tiny Llama4ForConditionalGeneration checkpoint, names
// and shapes from transformers modeling_llama4.py (Llama4VisionModel, Llama4MultiModalProjector,
// Llama4ForCausalLM under `language_model.`). HF `_init_weights` values: linears, the class and
// positional embeddings N(0, std); LayerNorms weight 1, bias 0.

/** Specs of every tensor of a Llama4ForConditionalGeneration checkpoint (`arch.vision` must be its vision_config). */
export function llama4VisionTensorSpecs(arch: ModelArch): TensorSpec[] {
  if (arch.modelType !== 'llama4' || !arch.vision) throw new Error('llama4VisionTensorSpecs: not a Llama 4 config with vision_config');
  const v = llama4VisionArch(arch.vision);
  const specs: TensorSpec[] = textTensorSpecs(arch).map((s) => ({ ...s, name: `language_model.${s.name}` }));
  const normal = (name: string, shape: number[]) => specs.push({ name, shape, init: 'normal' });
  const layerNormSpec = (p: string, dim: number) => {
    specs.push({ name: `${p}.weight`, shape: [dim], init: 'ones' });
    specs.push({ name: `${p}.bias`, shape: [dim], init: 'zeros' });
  };
  const h = v.hiddenSize;
  const vp = 'vision_model';
  normal(`${vp}.patch_embedding.linear.weight`, [h, v.numChannels * v.patchSize * v.patchSize]);
  normal(`${vp}.class_embedding`, [h]);
  normal(`${vp}.positional_embedding_vlm`, [(v.imageSize / v.patchSize) ** 2 + 1, h]);
  layerNormSpec(`${vp}.layernorm_pre`, h);
  layerNormSpec(`${vp}.layernorm_post`, h);
  for (let i = 0; i < v.numLayers; i++) {
    const p = `${vp}.model.layers.${i}`;
    // Llama4VisionAttention: q/k/v/o all biased.
    for (const proj of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) {
      normal(`${p}.self_attn.${proj}.weight`, [h, h]);
      specs.push({ name: `${p}.self_attn.${proj}.bias`, shape: [h], init: 'zeros' });
    }
    normal(`${p}.mlp.fc1.weight`, [v.intermediateSize, h]);
    specs.push({ name: `${p}.mlp.fc1.bias`, shape: [v.intermediateSize], init: 'zeros' });
    normal(`${p}.mlp.fc2.weight`, [h, v.intermediateSize]);
    specs.push({ name: `${p}.mlp.fc2.bias`, shape: [h], init: 'zeros' });
    layerNormSpec(`${p}.input_layernorm`, h);
    layerNormSpec(`${p}.post_attention_layernorm`, h);
  }
  normal(`${vp}.vision_adapter.mlp.fc1.weight`, [v.projectorInputDim, v.intermediateSize]);
  normal(`${vp}.vision_adapter.mlp.fc2.weight`, [v.projectorOutputDim, v.projectorOutputDim]);
  normal('multi_modal_projector.linear_1.weight', [arch.text.hiddenSize, v.visionOutputDim]);
  return specs;
}

/**
 * The image special tokens of a tiny Llama 4 vision tokenizer, appended after the synthetic
 * vocabulary, in the order of the real tokenizer's (<|image_start|> = 200080, <|image_end|>, two
 * reserved, <|tile_x_separator|>, <|tile_y_separator|>, ..., <|image|>, ..., <|patch|> = 200092).
 * The zoo config's boi/eoi/image_token_index point at these ids.
 */
export const TINY_LLAMA4_IMAGE_TOKENS = [
  '<|image_start|>', '<|image_end|>', '<|vision_reserved_special_token_0|>', '<|vision_reserved_special_token_1|>',
  '<|tile_x_separator|>', '<|tile_y_separator|>', '<|image|>', '<|patch|>',
] as const;

/**
 * preprocessor_config.json of a tiny Llama 4 vision checkpoint: Llama-4-Scout's file with the tile
 * side of the tiny vision tower and at most 4 tiles (Scout: 336 px, max_patches 16), so a 64-px
 * test image takes a 2x2 canvas plus the global tile.
 */
export function tinyLlama4PreprocessorConfig(arch: ModelArch): Record<string, unknown> {
  const side = llama4VisionArch(arch.vision ?? {}).imageSize;
  return {
    do_convert_rgb: true,
    do_normalize: true,
    do_rescale: true,
    do_resize: true,
    image_mean: [0.5, 0.5, 0.5],
    image_processor_type: 'Llama4ImageProcessorFast',
    image_std: [0.5, 0.5, 0.5],
    max_patches: 4,
    processor_class: 'Llama4Processor',
    resample: 2,
    rescale_factor: 1 / 255,
    resize_to_max_canvas: false,
    size: { height: side, width: side },
  };
}
