// Exact parameter count of the vision tower + multimodal projector of a multimodal LLaMA
// checkpoint, as HF transformers instantiates it, written module by module from:
//   - mllama (Llama 3.2 Vision): huggingface/transformers src/transformers/models/mllama/
//     modeling_mllama.py — `MllamaVisionModel` (patch_embedding, class_embedding,
//     gated_positional_embedding, pre/post_tile_positional_embedding, layernorm_pre/post,
//     transformer, global_transformer) + `MllamaForConditionalGeneration.multi_modal_projector`;
//     configuration_mllama.py for `max_aspect_ratio_id = len(supported_aspect_ratios)`.
//   - llama4 (Llama 4): huggingface/transformers src/transformers/models/llama4/modeling_llama4.py —
//     `Llama4VisionModel` (patch_embedding, class_embedding, positional_embedding_vlm,
//     layernorm_pre/post, model (encoder), vision_adapter) + `Llama4MultiModalProjector`.
// Buffers (the vision RoPE tables of Llama 4) are not parameters and are not counted.
//
// `config` is the checkpoint's whole `config.json` (with `vision_config` and `text_config`), or
// its `vision_config` alone together with `textHiddenSize`: the projector maps the vision output
// to the text model's hidden size, which only the text config holds.

import { z } from 'zod';
import { InputError } from '../errors.ts';
import type { VisionParamCount } from './types.ts';

export type VisionModelType = 'mllama' | 'llama4';

const posInt = z.number().int().positive();
const nonNegInt = z.number().int().nonnegative();

const mllamaVisionSchema = z.object({
  hidden_size: posInt,
  intermediate_size: posInt,
  num_hidden_layers: nonNegInt,
  num_global_layers: nonNegInt,
  // config.json spells it `attention_heads` (MllamaVisionConfig stores `num_attention_heads` under
  // that name); either spelling is accepted, see `headsOf`.
  attention_heads: posInt.optional(),
  num_attention_heads: posInt.optional(),
  image_size: posInt,
  patch_size: posInt,
  max_num_tiles: posInt,
  num_channels: posInt,
  vision_output_dim: posInt,
  supported_aspect_ratios: z.array(z.array(posInt).length(2)).min(1).optional(),
});

const llama4VisionSchema = z.object({
  hidden_size: posInt,
  intermediate_size: posInt,
  num_hidden_layers: nonNegInt,
  num_attention_heads: posInt,
  image_size: posInt,
  patch_size: posInt,
  num_channels: posInt,
  projector_input_dim: posInt,
  projector_output_dim: posInt,
  vision_output_dim: posInt,
});

const textHiddenSchema = z.object({ hidden_size: posInt });

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses `raw` with `schema`; a failure names the first bad field, e.g. `missing vision_config.hidden_size`. */
function parseOrThrow<T extends z.ZodTypeAny>(schema: T, raw: Record<string, unknown>, prefix: string): z.infer<T> {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const path = [prefix, ...issue.path.map(String)].join('.');
  let value: unknown = raw;
  for (const key of issue.path) value = isRecord(value) || Array.isArray(value) ? (value as Record<string, unknown>)[String(key)] : undefined;
  if (value === undefined) throw new InputError(`config.json: missing ${path}`);
  throw new InputError(`config.json: bad field ${path}: ${issue.message}`);
}

function linear(inFeatures: number, outFeatures: number, bias: boolean): number {
  return inFeatures * outFeatures + (bias ? outFeatures : 0);
}

/** `nn.LayerNorm(dim)`: weight and bias. */
function layerNorm(dim: number): number {
  return 2 * dim;
}

function splitConfig(config: Record<string, unknown>, textHiddenSize: number | undefined): { vision: Record<string, unknown>; textHidden: number } {
  if ('vision_config' in config || 'text_config' in config) {
    const vision = config.vision_config;
    if (!isRecord(vision)) throw new InputError('config.json: missing vision_config');
    const text = config.text_config;
    if (!isRecord(text)) throw new InputError('config.json: missing text_config');
    return { vision, textHidden: parseOrThrow(textHiddenSchema, text, 'text_config').hidden_size };
  }
  // A bare vision_config: the text hidden size must come from the caller.
  if (textHiddenSize === undefined) {
    throw new InputError('config.json: missing text_config.hidden_size (the multimodal projector outputs the text hidden size; pass the whole config.json or textHiddenSize)');
  }
  return { vision: config, textHidden: parseOrThrow(textHiddenSchema, { hidden_size: textHiddenSize }, 'text_config').hidden_size };
}

/** MllamaVisionModel + multi_modal_projector (modeling_mllama.py). */
function countMllama(raw: Record<string, unknown>, textHidden: number): Record<string, number> {
  const v = parseOrThrow(mllamaVisionSchema, raw, 'vision_config');
  const heads = v.attention_heads ?? v.num_attention_heads;
  if (heads === undefined) throw new InputError('config.json: missing vision_config.attention_heads');
  // MllamaVisionConfig: with no `supported_aspect_ratios` the default list (8 ratios) exists only
  // for max_num_tiles = 4; transformers raises otherwise.
  let ratios = v.supported_aspect_ratios?.length;
  if (ratios === undefined) {
    if (v.max_num_tiles !== 4) throw new InputError('config.json: missing vision_config.supported_aspect_ratios (required when max_num_tiles is not 4)');
    ratios = 8;
  }
  const h = v.hidden_size;
  const tiles = v.max_num_tiles;
  // Embedding tables are indexed by aspect_ratio_id in [0, max_aspect_ratio_id]: id 0 is padding.
  const aspectRows = ratios + 1;
  // Patches per tile, + 1 for the class token.
  const numPatches = Math.floor(v.image_size / v.patch_size) ** 2 + 1;
  // MllamaVisionAttention: head_dim = hidden // heads; q/k/v/o without bias.
  const attnDim = heads * Math.floor(h / heads);

  // MllamaVisionEncoderLayer: self_attn, mlp (fc1/fc2 with bias), two LayerNorms;
  // gated (global) layers add two scalar gates, `gate_attn` and `gate_ffn`.
  const layer = 3 * linear(h, attnDim, false) + linear(attnDim, h, false)
    + linear(h, v.intermediate_size, true) + linear(v.intermediate_size, h, true)
    + 2 * layerNorm(h);

  return {
    // nn.Conv2d(num_channels, hidden, kernel=stride=patch_size, bias=False).
    'vision.patch_embedding': h * v.num_channels * v.patch_size * v.patch_size,
    'vision.class_embedding': h,
    // MllamaPrecomputedPositionEmbedding: scalar gate, `embedding` (num_patches, hidden) and
    // `tile_embedding` = nn.Embedding(max_aspect_ratio_id + 1, max_num_tiles * num_patches * hidden).
    'vision.gated_positional_embedding': 1 + numPatches * h + aspectRows * tiles * numPatches * h,
    // pre_/post_tile_positional_embedding: MllamaPrecomputedAspectRatioEmbedding(is_gated=True) =
    // nn.Embedding(max_aspect_ratio_id + 1, max_num_tiles * hidden) + scalar gate, twice.
    'vision.tile_positional_embedding': 2 * (aspectRows * tiles * h + 1),
    // layernorm_pre, layernorm_post.
    'vision.layernorms': 2 * layerNorm(h),
    'vision.transformer': v.num_hidden_layers * layer,
    'vision.global_transformer': v.num_global_layers * (layer + 2),
    // nn.Linear(vision_output_dim, text hidden_size, bias=True).
    'vision.projector': linear(v.vision_output_dim, textHidden, true),
  };
}

/** Llama4VisionModel + Llama4MultiModalProjector (modeling_llama4.py). */
function countLlama4(raw: Record<string, unknown>, textHidden: number): Record<string, number> {
  const v = parseOrThrow(llama4VisionSchema, raw, 'vision_config');
  const h = v.hidden_size;
  const numPatches = Math.floor(v.image_size / v.patch_size) ** 2 + 1;
  // Llama4VisionAttention: head_dim = hidden // heads; q/k/v/o all with bias.
  const attnDim = v.num_attention_heads * Math.floor(h / v.num_attention_heads);
  // Llama4VisionEncoderLayer: self_attn, mlp (fc1/fc2 with bias), two LayerNorms.
  const layer = 3 * linear(h, attnDim, true) + linear(attnDim, h, true)
    + linear(h, v.intermediate_size, true) + linear(v.intermediate_size, h, true)
    + 2 * layerNorm(h);
  return {
    // Llama4UnfoldConvolution: nn.Linear(num_channels * patch^2, hidden, bias=False).
    'vision.patch_embedding': linear(v.num_channels * v.patch_size * v.patch_size, h, false),
    'vision.class_embedding': h,
    // positional_embedding_vlm: (num_patches, hidden), class token included.
    'vision.positional_embedding': numPatches * h,
    // layernorm_pre, layernorm_post.
    'vision.layernorms': 2 * layerNorm(h),
    'vision.transformer': v.num_hidden_layers * layer,
    // vision_adapter = Llama4VisionPixelShuffleMLP → Llama4VisionMLP2: fc1 = Linear(intermediate_size,
    // projector_input_dim, bias=False) — transformers sizes its input by `intermediate_size` (the
    // pixel-shuffled width, hidden / ratio² = 5632 for the released models) — and
    // fc2 = Linear(projector_output_dim, projector_output_dim, bias=False).
    'vision.adapter': linear(v.intermediate_size, v.projector_input_dim, false) + linear(v.projector_output_dim, v.projector_output_dim, false),
    // Llama4MultiModalProjector.linear_1 = Linear(vision_output_dim, text hidden_size, bias=False);
    // bias=False is hard-coded (the config's `multi_modal_projector_bias` is not read).
    'vision.projector': linear(v.vision_output_dim, textHidden, false),
  };
}

/**
 * Exact parameter count of the vision tower + multimodal projector (see file header). Components
 * are prefixed `vision.` and sum to `total`.
 */
export function countVisionParams(modelType: VisionModelType, config: Record<string, unknown>, textHiddenSize?: number): VisionParamCount {
  const { vision, textHidden } = splitConfig(config, textHiddenSize);
  const components = modelType === 'mllama' ? countMllama(vision, textHidden) : countLlama4(vision, textHidden);
  const total = Object.values(components).reduce((s, n) => s + n, 0);
  return { total, components };
}
