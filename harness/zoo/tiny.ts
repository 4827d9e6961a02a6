// `tiny-*` models: small random-weight checkpoints, one per LLaMA version, each exercising its
// version's architecture features (GQA, RoPE scaling, tied embeddings, explicit head_dim, MoE +
// shared expert, NoPE layers, chunked attention, QK-norm). They are the embedded default and the
// test fixtures; their weights are generated deterministically from a seed by the runner.
// LLaMA 1/2/3 tiny models keep the real vocabulary sizes so the real tokenizers apply.
import type { ZooEntry } from './types.ts';

const base = {
  architectures: ['LlamaForCausalLM'],
  hidden_act: 'silu',
  model_type: 'llama',
  hidden_size: 64,
  intermediate_size: 176,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  initializer_range: 0.02,
  torch_dtype: 'float32',
};

const llama3Base = {
  ...base,
  bos_token_id: 128000,
  eos_token_id: 128001,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-5,
  rope_theta: 500000.0,
  vocab_size: 128256,
  tie_word_embeddings: false,
};

const llama3Scaling = (factor: number) => ({
  factor,
  low_freq_factor: 1.0,
  high_freq_factor: 4.0,
  original_max_position_embeddings: 64,
  rope_type: 'llama3',
});

// The tiny Llama 4 text model, shared by tiny-llama-4 and tiny-llama-4-vision.
const llama4Text = {
  hidden_act: 'silu',
  hidden_size: 64,
  intermediate_size: 96,
  intermediate_size_mlp: 176,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 16,
  num_local_experts: 4,
  num_experts_per_tok: 1,
  interleave_moe_layer_step: 2,
  no_rope_layers: [1, 1, 1, 0],
  attention_chunk_size: 16,
  use_qk_norm: true,
  attn_temperature_tuning: true,
  floor_scale: 8,
  attn_scale: 0.1,
  max_position_embeddings: 1024,
  rms_norm_eps: 1e-5,
  rope_theta: 500000.0,
  rope_scaling: null,
  vocab_size: 512,
  bos_token_id: 1,
  eos_token_id: 2,
  tie_word_embeddings: false,
  torch_dtype: 'float32',
};

const text = 'text' as const;
const tinyRepo = (id: string) => `llama-eval/${id}`;

export const TINY: ZooEntry[] = [
  {
    id: 'tiny-llama-1', family: 'llama', version: '1', hfRepo: tinyRepo('tiny-llama-1'), modality: text,
    config: { ...base, bos_token_id: 1, eos_token_id: 2, max_position_embeddings: 2048, rms_norm_eps: 1e-6, vocab_size: 32000, tie_word_embeddings: false },
  },
  {
    id: 'tiny-llama-2', family: 'llama', version: '2', hfRepo: tinyRepo('tiny-llama-2'), modality: text,
    // GQA as in Llama-2-70B.
    config: { ...base, bos_token_id: 1, eos_token_id: 2, max_position_embeddings: 4096, num_key_value_heads: 2, rms_norm_eps: 1e-5, vocab_size: 32000, tie_word_embeddings: false, rope_scaling: null },
  },
  {
    id: 'tiny-llama-3', family: 'llama', version: '3', hfRepo: tinyRepo('tiny-llama-3'), modality: text,
    config: { ...llama3Base, max_position_embeddings: 8192, rope_scaling: null },
  },
  {
    id: 'tiny-llama-3.1', family: 'llama', version: '3.1', hfRepo: tinyRepo('tiny-llama-3.1'), modality: text,
    // `llama3` RoPE scaling with a small original context so that the scaled band is exercised.
    config: { ...llama3Base, max_position_embeddings: 512, mlp_bias: false, rope_scaling: llama3Scaling(8.0) },
  },
  {
    id: 'tiny-llama-3.2', family: 'llama', version: '3.2', hfRepo: tinyRepo('tiny-llama-3.2'), modality: text,
    // Tied embeddings and an explicit head_dim that is not hidden_size / heads.
    config: { ...llama3Base, head_dim: 32, max_position_embeddings: 2048, mlp_bias: false, rope_scaling: llama3Scaling(32.0), tie_word_embeddings: true },
  },
  {
    id: 'tiny-llama-3.3', family: 'llama', version: '3.3', hfRepo: tinyRepo('tiny-llama-3.3'), modality: text,
    config: { ...llama3Base, eos_token_id: [128001, 128008, 128009], max_position_embeddings: 512, mlp_bias: false, rope_scaling: llama3Scaling(8.0) },
  },
  {
    id: 'tiny-llama-3.2-vision', family: 'llama', version: '3.2', hfRepo: tinyRepo('tiny-llama-3.2-vision'), modality: 'text+image',
    // MllamaForConditionalGeneration (issue 10): a 3-layer text model with a cross-attention layer at
    // index 1, and a vision tower with 16-px tiles of 8-px patches (5 tokens per tile with the class
    // token, so HF pads each tile to 8), up to 4 tiles, 3 local + 1 gated global layer, intermediate
    // features of local layers 1 and 2 (vision_output_dim = 32 * 3). Weights: runners/tiny-vision.ts.
    config: {
      architectures: ['MllamaForConditionalGeneration'],
      model_type: 'mllama',
      image_token_index: 128256,
      torch_dtype: 'float32',
      text_config: {
        ...llama3Base,
        model_type: 'mllama_text_model',
        num_hidden_layers: 3,
        cross_attention_layers: [1],
        max_position_embeddings: 2048,
        pad_token_id: 128004,
        rope_scaling: llama3Scaling(8.0),
      },
      vision_config: {
        model_type: 'mllama_vision_model',
        hidden_act: 'gelu',
        hidden_size: 32,
        attention_heads: 2,
        intermediate_size: 64,
        num_hidden_layers: 3,
        num_global_layers: 1,
        intermediate_layers_indices: [1, 2],
        vision_output_dim: 96,
        image_size: 16,
        patch_size: 8,
        num_channels: 3,
        max_num_tiles: 4,
        norm_eps: 1e-5,
        initializer_range: 0.02,
        supported_aspect_ratios: [[1, 1], [1, 2], [1, 3], [1, 4], [2, 1], [2, 2], [3, 1], [4, 1]],
      },
    },
  },
  {
    id: 'tiny-llama-4', family: 'llama', version: '4', hfRepo: tinyRepo('tiny-llama-4'), modality: text,
    // Llama4ForCausalLM text config: MoE on every 2nd layer (4 experts, top-1, sigmoid router,
    // shared expert), NoPE on every 4th layer, chunked local attention, QK-norm, temperature tuning.
    config: {
      architectures: ['Llama4ForCausalLM'],
      model_type: 'llama4_text',
      ...llama4Text,
    },
  },
  {
    id: 'tiny-llama-4-vision', family: 'llama', version: '4', hfRepo: tinyRepo('tiny-llama-4-vision'), modality: 'text+image',
    // Llama4ForConditionalGeneration (issue 10): tiny-llama-4's text model (vocabulary + 8 image
    // special tokens at 512..519, see runners/tiny-vision.ts) and a vision tower with 28-px tiles of
    // 7-px patches (a 4x4 grid: 2D RoPE, pixel shuffle 0.5 -> 4 tokens per tile), 2 layers of width
    // 16, adapter and projector of width 32. Its own id, not a vision_config on tiny-llama-4: that
    // one is a Llama4ForCausalLM (model_type llama4_text, tensors without `language_model.`) which
    // the ORT, GGUF and PEFT paths and their tests build on.
    config: {
      architectures: ['Llama4ForConditionalGeneration'],
      model_type: 'llama4',
      boi_token_index: 512,
      eoi_token_index: 513,
      image_token_index: 519,
      tie_word_embeddings: false,
      torch_dtype: 'float32',
      text_config: { ...llama4Text, model_type: 'llama4_text', vocab_size: 520 },
      vision_config: {
        model_type: 'llama4_vision_model',
        hidden_act: 'gelu',
        hidden_size: 16,
        num_attention_heads: 2,
        intermediate_size: 64,
        num_hidden_layers: 2,
        image_size: 28,
        patch_size: 7,
        num_channels: 3,
        norm_eps: 1e-5,
        rope_theta: 10000,
        pixel_shuffle_ratio: 0.5,
        projector_input_dim: 32,
        projector_output_dim: 32,
        vision_output_dim: 32,
        multi_modal_projector_bias: false,
        vision_feature_layer: -1,
        vision_feature_select_strategy: 'default',
        initializer_range: 0.02,
      },
    },
  },
];
