// LLaMA 3, 3.1, 3.2 (text) and 3.3: the `config.json` of each HF checkpoint, verbatim
// (architecture fields). 3.1+ use the `llama3` RoPE scaling; 3.2 1B/3B tie their embeddings.
import type { ZooEntry } from './types.ts';

interface Shape {
  hidden: number;
  inter: number;
  heads: number;
  layers: number;
  headDim?: number;
  tie?: boolean;
}

function llama3(s: Shape, extra: { maxPos: number; ropeFactor: number | null; eos: number | number[] }): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: 128000,
    eos_token_id: extra.eos,
    ...(s.headDim !== undefined ? { head_dim: s.headDim } : {}),
    hidden_act: 'silu',
    hidden_size: s.hidden,
    initializer_range: 0.02,
    intermediate_size: s.inter,
    max_position_embeddings: extra.maxPos,
    ...(extra.ropeFactor !== null ? { mlp_bias: false } : {}),
    model_type: 'llama',
    num_attention_heads: s.heads,
    num_hidden_layers: s.layers,
    num_key_value_heads: 8,
    pretraining_tp: 1,
    rms_norm_eps: 1e-5,
    rope_scaling:
      extra.ropeFactor === null
        ? null
        : {
            factor: extra.ropeFactor,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 8192,
            rope_type: 'llama3',
          },
    rope_theta: 500000.0,
    tie_word_embeddings: s.tie ?? false,
    torch_dtype: 'bfloat16',
    vocab_size: 128256,
  };
}

const S8B: Shape = { hidden: 4096, inter: 14336, heads: 32, layers: 32 };
const S70B: Shape = { hidden: 8192, inter: 28672, heads: 64, layers: 80 };
const S405B: Shape = { hidden: 16384, inter: 53248, heads: 128, layers: 126 };
const S1B: Shape = { hidden: 2048, inter: 8192, heads: 32, layers: 16, headDim: 64, tie: true };
const S3B: Shape = { hidden: 3072, inter: 8192, heads: 24, layers: 28, headDim: 128, tie: true };

const L3 = { maxPos: 8192, ropeFactor: null, eos: 128001 };
const L31 = { maxPos: 131072, ropeFactor: 8.0, eos: 128001 };
const L32 = { maxPos: 131072, ropeFactor: 32.0, eos: 128001 };
// Llama 3.3 was released as an instruct model only; its config ends turns on <|eot_id|> too.
const L33 = { maxPos: 131072, ropeFactor: 8.0, eos: [128001, 128008, 128009] };

const text = 'text' as const;

export const LLAMA_3: ZooEntry[] = [
  { id: 'llama-3-8b', family: 'llama', version: '3', hfRepo: 'meta-llama/Meta-Llama-3-8B', modality: text, config: llama3(S8B, L3) },
  { id: 'llama-3-70b', family: 'llama', version: '3', hfRepo: 'meta-llama/Meta-Llama-3-70B', modality: text, config: llama3(S70B, L3) },
  { id: 'llama-3.1-8b', family: 'llama', version: '3.1', hfRepo: 'meta-llama/Llama-3.1-8B', modality: text, config: llama3(S8B, L31) },
  { id: 'llama-3.1-70b', family: 'llama', version: '3.1', hfRepo: 'meta-llama/Llama-3.1-70B', modality: text, config: llama3(S70B, L31) },
  { id: 'llama-3.1-405b', family: 'llama', version: '3.1', hfRepo: 'meta-llama/Llama-3.1-405B', modality: text, config: llama3(S405B, L31) },
  { id: 'llama-3.2-1b', family: 'llama', version: '3.2', hfRepo: 'meta-llama/Llama-3.2-1B', modality: text, config: llama3(S1B, L32) },
  { id: 'llama-3.2-3b', family: 'llama', version: '3.2', hfRepo: 'meta-llama/Llama-3.2-3B', modality: text, config: llama3(S3B, L32) },
  { id: 'llama-3.3-70b', family: 'llama', version: '3.3', hfRepo: 'meta-llama/Llama-3.3-70B-Instruct', modality: text, config: llama3(S70B, L33) },
];
