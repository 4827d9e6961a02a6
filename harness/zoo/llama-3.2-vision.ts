// LLaMA 3.2 Vision (11B, 90B): the `config.json` of each HF checkpoint (model_type "mllama"),
// verbatim in its architecture fields. The released config.json files also carry the full dump of
// `PretrainedConfig` generation defaults inside text_config / vision_config (max_length, top_k,
// id2label, ... and a meaningless `tie_word_embeddings: true` in vision_config) and
// `transformers_version`; those do not affect the architecture and are left out.
//
// Sources for the values:
//  - field set, ids and constants: huggingface/transformers
//    src/transformers/models/mllama/convert_mllama_weights_to_hf.py (`write_model`: rope_scaling
//    llama3 factor 8 / low 1 / high 4 / original 8192, max_position_embeddings 131072,
//    bos 128000, eos 128001 for base models ([128001, 128008, 128009] for Instruct), pad 128004,
//    tie_word_embeddings False; vision: patch 14, 3 channels, 32 layers, 8 global layers,
//    hidden 1280, 16 heads, intermediate 4 * 1280, intermediate_layers_indices [3, 7, 15, 23, 30],
//    supported_aspect_ratios for max_num_tiles 4; cross_attention_layers = range(freq - 1,
//    n_layers + n_cross, freq + 1) with freq = ceil(n_layers / n_cross));
//  - per-size arch args: meta-llama/llama-models models/sku_list.py (commit 7749818):
//    11B: dim 4096, n_layers 32, n_heads 32, n_kv_heads 8, ffn_dim_multiplier 1.3, multiple_of
//    1024, vision_num_cross_attention_layers 8, vision_chunk_size 448 (base) / 560 (Instruct);
//    90B: dim 8192, n_layers 80, n_heads 64, n_kv_heads 8, ffn_dim_multiplier 1.3, multiple_of
//    4096, vision_num_cross_attention_layers 20, vision_chunk_size 560; both norm_eps 1e-5,
//    rope_theta 500000. intermediate_size = compute_intermediate_size(dim, multiple_of) of the
//    conversion script: 14336 (11B), 28672 (90B). text num_hidden_layers = n_layers + n_cross.
//  - layout of the released file (nested text_config / vision_config, `attention_heads`,
//    `image_token_index` 128256, model_type names): the Llama-3.2-90B-Vision-Instruct config.json
//    as quoted in public code (same values as above, image_size 560), and danbev/learning-ai
//    notes on Llama-3.2-11B-Vision-Instruct (vision_config with image_size 560,
//    cross_attention_layers [3, 8, ..., 38], embed_tokens of 128264 = vocab_size + 8 rows).
//
// Base vs Instruct: the pre-trained 11B checkpoint tiles images at 448 px, the 11B Instruct and
// both 90B checkpoints at 560 px (sku_list.py above; torchtune
// torchtune/models/llama3_2_vision/_model_builders.py `llama3_2_vision_11b`: "Default is 560 for
// Instruct weights, use 448 for pre-trained"; pytorch/torchchat#1229: the base and Instruct 11B
// differ in the size of the positional embedding). image_size changes the vision tower's
// position / tile-position tables, so the 11B base has 27,279,360 fewer parameters than 11B
// Instruct (37 * (1601 - 1025) * 1280).
import type { ZooEntry } from './types.ts';

interface TextShape {
  hidden: number;
  inter: number;
  heads: number;
  /** Self-attention layers of the Llama 3.1 backbone (`n_layers`). */
  selfLayers: number;
  /** Cross-attention layers inserted (`vision_num_cross_attention_layers`). */
  crossLayers: number;
}

/** convert_mllama_weights_to_hf.py: where the cross-attention layers sit in the merged stack. */
function crossAttentionLayers(s: TextShape): number[] {
  const freq = Math.ceil(s.selfLayers / s.crossLayers);
  const total = s.selfLayers + s.crossLayers;
  const out: number[] = [];
  for (let i = freq - 1; i < total; i += freq + 1) out.push(i);
  return out;
}

function mllama(s: TextShape, imageSize: number): Record<string, unknown> {
  return {
    architectures: ['MllamaForConditionalGeneration'],
    image_token_index: 128256,
    model_type: 'mllama',
    text_config: {
      bos_token_id: 128000,
      cross_attention_layers: crossAttentionLayers(s),
      dropout: 0,
      eos_token_id: 128001,
      hidden_act: 'silu',
      hidden_size: s.hidden,
      initializer_range: 0.02,
      intermediate_size: s.inter,
      max_position_embeddings: 131072,
      model_type: 'mllama_text_model',
      num_attention_heads: s.heads,
      num_hidden_layers: s.selfLayers + s.crossLayers,
      num_key_value_heads: 8,
      pad_token_id: 128004,
      rms_norm_eps: 1e-5,
      rope_scaling: {
        factor: 8.0,
        high_freq_factor: 4.0,
        low_freq_factor: 1.0,
        original_max_position_embeddings: 8192,
        rope_type: 'llama3',
      },
      rope_theta: 500000.0,
      tie_word_embeddings: false,
      torch_dtype: 'bfloat16',
      use_cache: true,
      vocab_size: 128256,
    },
    torch_dtype: 'bfloat16',
    vision_config: {
      attention_heads: 16,
      hidden_act: 'gelu',
      hidden_size: 1280,
      image_size: imageSize,
      intermediate_layers_indices: [3, 7, 15, 23, 30],
      intermediate_size: 5120,
      max_num_tiles: 4,
      model_type: 'mllama_vision_model',
      norm_eps: 1e-5,
      num_channels: 3,
      num_global_layers: 8,
      num_hidden_layers: 32,
      patch_size: 14,
      supported_aspect_ratios: [[1, 1], [1, 2], [1, 3], [1, 4], [2, 1], [2, 2], [3, 1], [4, 1]],
      torch_dtype: 'bfloat16',
      // (1 + 5 intermediate layers) * 1280: final + intermediate encoder states, concatenated.
      vision_output_dim: 7680,
    },
  };
}

const S11B: TextShape = { hidden: 4096, inter: 14336, heads: 32, selfLayers: 32, crossLayers: 8 };
const S90B: TextShape = { hidden: 8192, inter: 28672, heads: 64, selfLayers: 80, crossLayers: 20 };

/** The configs the zoo entries hold, exported for tests. */
export const LLAMA_32_VISION_CONFIGS = {
  '11b': mllama(S11B, 448),
  '11b-instruct': mllama(S11B, 560),
  '90b': mllama(S90B, 560),
} as const;

const CARD = 'meta-llama/llama-models models/llama3_2/MODEL_CARD_VISION.md';

export const LLAMA_32_VISION: ZooEntry[] = [
  {
    id: 'llama-3.2-11b-vision',
    family: 'llama',
    version: '3.2',
    hfRepo: 'meta-llama/Llama-3.2-11B-Vision',
    modality: 'text+image',
    config: LLAMA_32_VISION_CONFIGS['11b'],
    published: {
      // No exact total is published for the base checkpoint; the card's "11B (10.6)" is rounded.
      // The exact 10,670,220,835 published for the Instruct checkpoint (build.nvidia.com model
      // card; HF safetensors metadata) is for image_size 560, see the file header.
      contextLength: { value: 128_000, source: `${CARD}: context length 128k` },
      note: 'Meta model card: "11B (10.6)" parameters (rounded); exact figures are published for the Instruct checkpoint only (10,670,220,835, image_size 560).',
    },
  },
  {
    id: 'llama-3.2-90b-vision',
    family: 'llama',
    version: '3.2',
    hfRepo: 'meta-llama/Llama-3.2-90B-Vision',
    modality: 'text+image',
    config: LLAMA_32_VISION_CONFIGS['90b'],
    published: {
      contextLength: { value: 128_000, source: `${CARD}: context length 128k` },
      note: 'Meta model card: "90B (88.8)" parameters; no exact published total was found. The HF checkpoint counts 88,593,355,323 (Llama-3.1-70B text + 20 cross-attention layers + 8 embedding rows + vision tower + projector), which the card\'s 88.8 does not match.',
    },
  },
];
