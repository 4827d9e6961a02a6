// LLaMA 4 (Scout, Maverick; Behemoth announced only): the `config.json` of each HF checkpoint
// (model_type "llama4"), verbatim in its architecture fields (`transformers_version` left out).
//
// How the config encodes the Llama 4 features (transformers configuration_llama4.py,
// `Llama4TextConfig`):
//  - MoE layers: `moe_layers`, or when absent range(interleave_moe_layer_step - 1, layers, step):
//    Scout (step 1) = all 48 layers, Maverick (step 2) = the 24 odd layers 1, 3, ..., 47; the
//    other Maverick layers are dense MLPs of width `intermediate_size_mlp` (16384).
//    `intermediate_size` (8192) is the width of each routed expert and of the shared expert.
//  - NoPE layers: `no_rope_layers[i]` is 1 where layer i USES RoPE; an empty or absent list means
//    the default `no_rope_layer_interval` = 4, i.e. layers 3, 7, ..., 47 are NoPE (global
//    attention); the RoPE layers use chunked attention of `attention_chunk_size` 8192.
//  - `attn_temperature_tuning` / `floor_scale` / `attn_scale` (NoPE-layer query temperature
//    scaling): the released files do not carry them, so the class defaults 4 / 8192 / 0.1 apply.
//  - `use_qk_norm`: parameter-free L2 norm of q and k on RoPE layers (Scout true, Maverick false).
//
// Sources:
//  - Scout: https://huggingface.co/meta-llama/Llama-4-Scout-17B-16E/blob/main/config.json as
//    quoted in full (text_config) in AMD-AGI/Primus PR #165 (2025-08-22). Its rope_scaling is the
//    llama3 scaling with factor 16, low_freq_factor 1, high_freq_factor 1, original 8192, which is
//    what Meta's reference code applies to Scout (meta-llama/llama-models models/llama4/args.py:
//    "Only Llama-4-Scout uses scaled rope": rope_scaling_factor 16, rope_high_freq_factor 1;
//    model.py apply_scaling: low_freq_factor 1, old_context_len 8192). An earlier revision of the
//    file (transformers 4.51.0, April 2025) had factor 8 / high_freq_factor 4 and spelled out
//    moe_layers, no_rope_layers and the attn_* fields; the parameter count is the same.
//  - Maverick: the Llama-4-Maverick-17B-128E-Instruct config as quoted in NVIDIA/TensorRT-LLM
//    tests (LLAMA_4_MAVERICK_TWO_LAYER_CONFIG, before its 2-layer/NoPE test edits) — interleave
//    step 2, 128 experts, use_qk_norm false, rope_scaling null — with the base checkpoint's
//    context: transformers convert_llama4_weights_to_hf.py `max_context_length` gives 256K
//    (262144) for base models and 1M for the 128E Instruct (also tenstorrent/tt-inference-server
//    PR #564 model table: Llama-4-Maverick-17B-128E 256K). Not verified field-for-field against
//    the base repo's file: eos_token_id (taken as Scout base's list).
//  - vision_config (both): identical in every quoted copy (the April 2025 Scout file, the
//    TensorRT-LLM Maverick copy, and ai-dynamo/aiconfigurator's test asserting the vision_config
//    of its bundled Scout-16E-Instruct and Maverick-128E-Instruct config.json files).
//
// Active parameters ("17B active", Meta model card meta-llama/llama-models
// models/llama4/MODEL_CARD.md: Scout "17B (Activated) 109B (Total)", Maverick "17B (Activated)
// 400B (Total)"): Meta does not define the figure. Counting per token the text model's attention,
// norms, routers, the top-1 routed expert + the shared expert on MoE layers and the dense MLP on
// dense layers gives 15,103,923,200 (Scout) / 15,115,719,680 (Maverick) without the input
// embedding and the LM head, and 17,172,894,720 / 17,184,691,200 with both (each 1,034,485,760).
// Only the latter rounds to "17B", so Meta's figure includes embed_tokens and lm_head and excludes
// the vision encoder (+ projector: 871,932,416, which would make it 18.0B).
import type { ZooEntry } from './types.ts';

const VISION_CONFIG = {
  attention_dropout: 0.0,
  hidden_act: 'gelu',
  hidden_size: 1408,
  image_size: 336,
  initializer_range: 0.02,
  intermediate_size: 5632,
  model_type: 'llama4_vision_model',
  multi_modal_projector_bias: false,
  norm_eps: 1e-5,
  num_attention_heads: 16,
  num_channels: 3,
  num_hidden_layers: 34,
  patch_size: 14,
  pixel_shuffle_ratio: 0.5,
  projector_dropout: 0.0,
  projector_input_dim: 4096,
  projector_output_dim: 4096,
  rope_theta: 10000,
  torch_dtype: 'bfloat16',
  vision_feature_layer: -1,
  vision_feature_select_strategy: 'default',
  vision_output_dim: 4096,
};

const TEXT_COMMON = {
  attention_bias: false,
  attention_chunk_size: 8192,
  attention_dropout: 0.0,
  bos_token_id: 200000,
  eos_token_id: [200001, 200007, 200008],
  for_llm_compressor: false,
  head_dim: 128,
  hidden_act: 'silu',
  hidden_size: 5120,
  initializer_range: 0.02,
  intermediate_size: 8192,
  intermediate_size_mlp: 16384,
  max_position_embeddings: 262144,
  model_type: 'llama4_text',
  num_attention_heads: 40,
  num_experts_per_tok: 1,
  num_hidden_layers: 48,
  num_key_value_heads: 8,
  output_router_logits: false,
  pad_token_id: 200018,
  rms_norm_eps: 1e-5,
  rope_theta: 500000.0,
  router_aux_loss_coef: 0.001,
  router_jitter_noise: 0.0,
  torch_dtype: 'bfloat16',
  use_cache: true,
  vocab_size: 202048,
};

function llama4(text: Record<string, unknown>): Record<string, unknown> {
  return {
    architectures: ['Llama4ForConditionalGeneration'],
    boi_token_index: 200080,
    eoi_token_index: 200081,
    image_token_index: 200092,
    model_type: 'llama4',
    text_config: text,
    tie_word_embeddings: false,
    torch_dtype: 'bfloat16',
    vision_config: VISION_CONFIG,
  };
}

const SCOUT = llama4({
  ...TEXT_COMMON,
  interleave_moe_layer_step: 1,
  no_rope_layers: [],
  num_local_experts: 16,
  rope_scaling: {
    factor: 16.0,
    high_freq_factor: 1.0,
    low_freq_factor: 1.0,
    original_max_position_embeddings: 8192,
    rope_type: 'llama3',
  },
  use_qk_norm: true,
});

const MAVERICK = llama4({
  ...TEXT_COMMON,
  interleave_moe_layer_step: 2,
  num_local_experts: 128,
  rope_scaling: null,
  use_qk_norm: false,
});

const CARD = 'meta-llama/llama-models models/llama4/MODEL_CARD.md';
const BLOG = 'Meta AI blog "The Llama 4 herd" (2025-04-05), https://ai.meta.com/blog/llama-4-multimodal-intelligence/';

export const LLAMA_4: ZooEntry[] = [
  {
    id: 'llama-4-scout',
    family: 'llama',
    version: '4',
    hfRepo: 'meta-llama/Llama-4-Scout-17B-16E',
    modality: 'text+image',
    config: SCOUT,
    published: {
      // HF Hub safetensors metadata (`safetensors.total`) of meta-llama/Llama-4-Scout-17B-16E-Instruct
      // (same architecture), as recorded in debaditc/kvfit scripts/build_registry.py ("exact
      // parameter count reported by the Hub's safetensors metadata"); the card says 109B.
      totalParams: { value: 108_641_793_536, source: 'HF safetensors metadata of meta-llama/Llama-4-Scout-17B-16E-Instruct (debaditc/kvfit scripts/build_registry.py); model card: 109B' },
      activeParams: { value: 17_000_000_000, source: `${CARD}: "17B (Activated)" (rounded)` },
      contextLength: { value: 10_000_000, source: `${CARD}: context length 10M (Instruct; the base config.json has max_position_embeddings 262144)` },
    },
  },
  {
    id: 'llama-4-maverick',
    family: 'llama',
    version: '4',
    hfRepo: 'meta-llama/Llama-4-Maverick-17B-128E',
    modality: 'text+image',
    config: MAVERICK,
    published: {
      // docs.fireworks.ai/accounts/exporting-billing-metrics: sample row for
      // accounts/fireworks/models/llama4-maverick-instruct-basic, parameter_count 401583781376.
      totalParams: { value: 401_583_781_376, source: 'Fireworks docs, exporting-billing-metrics: parameter_count of Llama 4 Maverick (Instruct); model card: 400B' },
      activeParams: { value: 17_000_000_000, source: `${CARD}: "17B (Activated)" (rounded)` },
      contextLength: { value: 1_000_000, source: `${CARD}: context length 1M (Instruct; the base config.json has max_position_embeddings 262144)` },
    },
  },
  {
    id: 'llama-4-behemoth',
    family: 'llama',
    version: '4',
    // No such repository exists: Behemoth's weights were never released.
    hfRepo: 'meta-llama/Llama-4-Behemoth',
    modality: 'text+image',
    config: null,
    published: {
      totalParams: { value: 2_000_000_000_000, source: `${BLOG}: "nearly two trillion total parameters"` },
      activeParams: { value: 288_000_000_000, source: `${BLOG}: "288 billion active parameter model with 16 experts"` },
      note: 'Announced as a preview (still training) with 16 experts, 288B active and nearly 2T total parameters; never released, so only these rounded figures exist.',
    },
  },
];
