// LLaMA 1 and LLaMA 2: the `config.json` of each HF checkpoint, verbatim (architecture fields).
// LLaMA 1 weights were released outside the Hub; `huggyllama/*` holds the standard HF conversion.
import type { ZooEntry } from './types.ts';

function llama1(hidden: number, inter: number, heads: number, layers: number, eps = 1e-6): Record<string, unknown> {
  // huggyllama/llama-<size>/config.json (65b alone has rms_norm_eps 1e-5, as Meta's params.json for 65B)
  return {
    architectures: ['LlamaForCausalLM'],
    bos_token_id: 1,
    eos_token_id: 2,
    hidden_act: 'silu',
    hidden_size: hidden,
    initializer_range: 0.02,
    intermediate_size: inter,
    max_position_embeddings: 2048,
    max_sequence_length: 2048,
    model_type: 'llama',
    num_attention_heads: heads,
    num_hidden_layers: layers,
    pad_token_id: 0,
    rms_norm_eps: eps,
    tie_word_embeddings: false,
    torch_dtype: 'float16',
    vocab_size: 32000,
  };
}

function llama2(hidden: number, inter: number, heads: number, layers: number, kvHeads: number): Record<string, unknown> {
  // meta-llama/Llama-2-<size>-hf/config.json
  return {
    architectures: ['LlamaForCausalLM'],
    bos_token_id: 1,
    eos_token_id: 2,
    hidden_act: 'silu',
    hidden_size: hidden,
    initializer_range: 0.02,
    intermediate_size: inter,
    max_position_embeddings: 4096,
    model_type: 'llama',
    num_attention_heads: heads,
    num_hidden_layers: layers,
    num_key_value_heads: kvHeads,
    pretraining_tp: 1,
    rms_norm_eps: 1e-5,
    rope_scaling: null,
    tie_word_embeddings: false,
    torch_dtype: 'float16',
    vocab_size: 32000,
  };
}

const text = 'text' as const;

export const LLAMA_1_2: ZooEntry[] = [
  { id: 'llama-1-7b', family: 'llama', version: '1', hfRepo: 'huggyllama/llama-7b', modality: text, config: llama1(4096, 11008, 32, 32) },
  { id: 'llama-1-13b', family: 'llama', version: '1', hfRepo: 'huggyllama/llama-13b', modality: text, config: llama1(5120, 13824, 40, 40) },
  { id: 'llama-1-33b', family: 'llama', version: '1', hfRepo: 'huggyllama/llama-30b', modality: text, config: llama1(6656, 17920, 52, 60) },
  { id: 'llama-1-65b', family: 'llama', version: '1', hfRepo: 'huggyllama/llama-65b', modality: text, config: llama1(8192, 22016, 64, 80, 1e-5) },
  { id: 'llama-2-7b', family: 'llama', version: '2', hfRepo: 'meta-llama/Llama-2-7b-hf', modality: text, config: llama2(4096, 11008, 32, 32, 32) },
  { id: 'llama-2-13b', family: 'llama', version: '2', hfRepo: 'meta-llama/Llama-2-13b-hf', modality: text, config: llama2(5120, 13824, 40, 40, 40) },
  { id: 'llama-2-70b', family: 'llama', version: '2', hfRepo: 'meta-llama/Llama-2-70b-hf', modality: text, config: llama2(8192, 28672, 64, 80, 8) },
];
