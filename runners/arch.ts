// Normalised architecture of a LLaMA-family checkpoint, parsed from its HF `config.json`.
//
// Three HF model types cover the family: `llama` (LLaMA 1, 2, 3, 3.1, 3.2 text, 3.3),
// `mllama` (LLaMA 3.2 Vision: a text model with cross-attention layers, and a vision tower) and
// `llama4` (LLaMA 4: MoE text model with NoPE layers, chunked attention, QK-norm; vision tower).
// Every feature is switched by config fields, never by model name. Defaults are the ones the
// HF config classes apply when a field is absent (transformers `LlamaConfig`, `MllamaTextConfig`,
// `Llama4TextConfig`).

import { z } from 'zod';
import { InputError } from '../results/errors.ts';

export const ROPE_TYPES = ['default', 'linear', 'dynamic', 'llama3', 'yarn', 'longrope'] as const;
export type RopeType = (typeof ROPE_TYPES)[number];

export interface RopeScaling {
  ropeType: RopeType;
  factor: number;
  /** `llama3` only. */
  lowFreqFactor?: number;
  highFreqFactor?: number;
  originalMaxPositionEmbeddings?: number;
}

export interface MoeArch {
  numExperts: number;
  topK: number;
  /** Intermediate size of each routed expert and of the shared expert. */
  expertIntermediateSize: number;
  /** Layer indices (0-based) whose MLP is a MoE block; the others are dense MLPs. */
  moeLayers: number[];
}

export interface TextArch {
  vocabSize: number;
  hiddenSize: number;
  /** Intermediate size of the dense MLP layers. */
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  tieWordEmbeddings: boolean;
  maxPositionEmbeddings: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  rmsNormEps: number;
  attentionBias: boolean;
  mlpBias: boolean;
  /** Mllama: indices of cross-attention decoder layers (they attend to image states). */
  crossAttentionLayers: number[];
  /** Mllama: embed_tokens has vocab_size + 8 rows (the image and special tokens). */
  extraEmbeddingRows: number;
  moe: MoeArch | null;
  /** Llama 4: layers without rotary embedding (NoPE). */
  noRopeLayers: number[];
  /** Llama 4: chunked local attention window on RoPE layers. */
  attentionChunkSize: number | null;
  /** Llama 4: parameter-free L2 norm of q and k on RoPE layers. */
  useQkNorm: boolean;
}

export const MODEL_TYPES = ['llama', 'mllama', 'llama4'] as const;
export type ModelType = (typeof MODEL_TYPES)[number];

export interface ModelArch {
  modelType: ModelType;
  text: TextArch;
  /** Raw vision config (counted by params/vision.ts), null for text-only models. */
  vision: Record<string, unknown> | null;
}

const int = z.number().int().nonnegative();
const pos = z.number().int().positive();

const ropeScalingSchema = z
  .object({
    rope_type: z.enum(ROPE_TYPES).optional(),
    type: z.enum(ROPE_TYPES).optional(),
    factor: z.number().positive().optional(),
    low_freq_factor: z.number().optional(),
    high_freq_factor: z.number().optional(),
    original_max_position_embeddings: pos.optional(),
  })
  .passthrough()
  .nullable()
  .optional();

const textSchema = z
  .object({
    vocab_size: pos,
    hidden_size: pos,
    intermediate_size: pos,
    num_hidden_layers: pos,
    num_attention_heads: pos,
    num_key_value_heads: pos.nullable().optional(),
    head_dim: pos.nullable().optional(),
    tie_word_embeddings: z.boolean().optional(),
    max_position_embeddings: pos.optional(),
    rope_theta: z.number().positive().optional(),
    rope_scaling: ropeScalingSchema,
    rms_norm_eps: z.number().positive().optional(),
    attention_bias: z.boolean().optional(),
    mlp_bias: z.boolean().optional(),
    cross_attention_layers: z.array(int).nullable().optional(),
    // Llama 4
    intermediate_size_mlp: pos.optional(),
    num_local_experts: pos.optional(),
    num_experts_per_tok: pos.optional(),
    interleave_moe_layer_step: int.optional(),
    moe_layers: z.array(int).nullable().optional(),
    no_rope_layers: z.array(int).nullable().optional(),
    attention_chunk_size: pos.nullable().optional(),
    use_qk_norm: z.boolean().optional(),
  })
  .passthrough();

type RawText = z.infer<typeof textSchema>;

/** Turns a zod failure into one line naming the field, e.g. `missing text_config.hidden_size`. */
function describeIssue(source: string, prefix: string, error: z.ZodError): InputError {
  const issue = error.issues[0]!;
  const path = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
  const missing = issue.code === 'invalid_type' && /received undefined/.test(issue.message);
  const what = missing ? `missing field ${path}` : `bad field ${path}: ${issue.message}`;
  return new InputError(`${source}: ${what}`);
}

function parseRopeScaling(raw: RawText['rope_scaling']): RopeScaling | null {
  if (!raw) return null;
  const ropeType = raw.rope_type ?? raw.type ?? 'default';
  if (ropeType === 'default') return null;
  return {
    ropeType,
    factor: raw.factor ?? 1,
    lowFreqFactor: raw.low_freq_factor,
    highFreqFactor: raw.high_freq_factor,
    originalMaxPositionEmbeddings: raw.original_max_position_embeddings,
  };
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function parseText(raw: RawText, modelType: ModelType, source: string, prefix: string): TextArch {
  const numHeads = raw.num_attention_heads;
  if (raw.hidden_size % numHeads !== 0 && raw.head_dim == null) {
    throw new InputError(`${source}: ${prefix}hidden_size ${raw.hidden_size} is not divisible by num_attention_heads ${numHeads} and no head_dim is given`);
  }
  const numKvHeads = raw.num_key_value_heads ?? numHeads;
  if (numHeads % numKvHeads !== 0) {
    throw new InputError(`${source}: ${prefix}num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  }
  const numLayers = raw.num_hidden_layers;
  let moe: MoeArch | null = null;
  let intermediateSize = raw.intermediate_size;
  let noRopeLayers: number[] = [];
  if (modelType === 'llama4') {
    // Llama4TextConfig: `intermediate_size` is the expert (and shared-expert) width,
    // `intermediate_size_mlp` the dense layers' width. MoE layers are every
    // `interleave_moe_layer_step`-th layer counting from the step-1'th, unless `moe_layers` is given.
    const step = raw.interleave_moe_layer_step ?? 1;
    const moeLayers = raw.moe_layers ?? (step > 0 ? range(numLayers).filter((i) => (i + 1) % step === 0) : []);
    moe = {
      numExperts: raw.num_local_experts ?? 16,
      topK: raw.num_experts_per_tok ?? 1,
      expertIntermediateSize: raw.intermediate_size,
      moeLayers,
    };
    intermediateSize = raw.intermediate_size_mlp ?? 16384;
    // `no_rope_layers[i]` is 1 where layer i USES RoPE, 0 for NoPE (HF Llama4TextConfig); when
    // absent, every 4th layer is NoPE (`no_rope_layer_interval` = 4).
    const flags = raw.no_rope_layers && raw.no_rope_layers.length > 0
      ? raw.no_rope_layers
      : range(numLayers).map((i) => ((i + 1) % 4 === 0 ? 0 : 1));
    noRopeLayers = flags.flatMap((useRope, i) => (useRope ? [] : [i]));
  }
  return {
    vocabSize: raw.vocab_size,
    hiddenSize: raw.hidden_size,
    intermediateSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim: raw.head_dim ?? raw.hidden_size / numHeads,
    tieWordEmbeddings: raw.tie_word_embeddings ?? false,
    maxPositionEmbeddings: raw.max_position_embeddings ?? 2048,
    ropeTheta: raw.rope_theta ?? 10000,
    ropeScaling: parseRopeScaling(raw.rope_scaling),
    rmsNormEps: raw.rms_norm_eps ?? 1e-6,
    attentionBias: raw.attention_bias ?? false,
    mlpBias: raw.mlp_bias ?? false,
    crossAttentionLayers: modelType === 'mllama' ? raw.cross_attention_layers ?? [] : [],
    extraEmbeddingRows: modelType === 'mllama' ? 8 : 0,
    moe,
    noRopeLayers,
    attentionChunkSize: modelType === 'llama4' ? raw.attention_chunk_size ?? null : null,
    useQkNorm: modelType === 'llama4' ? raw.use_qk_norm ?? true : false,
  };
}

const TEXT_MODEL_TYPES: Record<string, ModelType> = {
  llama: 'llama',
  mllama: 'mllama',
  mllama_text_model: 'mllama',
  llama4: 'llama4',
  llama4_text: 'llama4',
};

/** Parses a `config.json` object. `source` names the file in error messages. */
export function parseModelConfig(config: unknown, source: string): ModelArch {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new InputError(`${source}: expected a JSON object`);
  }
  const obj = config as Record<string, unknown>;
  const rawType = obj.model_type;
  if (typeof rawType !== 'string') throw new InputError(`${source}: missing field model_type`);
  const modelType = TEXT_MODEL_TYPES[rawType];
  if (!modelType) {
    throw new InputError(`${source}: unsupported model_type "${rawType}" (supported: ${Object.keys(TEXT_MODEL_TYPES).join(', ')})`);
  }
  const nested = rawType === 'mllama' || rawType === 'llama4';
  const prefix = nested ? 'text_config' : '';
  const rawText = nested ? obj.text_config : obj;
  if (nested && (typeof rawText !== 'object' || rawText === null)) {
    throw new InputError(`${source}: missing field text_config`);
  }
  const parsed = textSchema.safeParse(rawText);
  if (!parsed.success) throw describeIssue(source, prefix, parsed.error);
  const text = parseText(parsed.data, modelType, source, prefix ? `${prefix}.` : '');
  let vision: Record<string, unknown> | null = null;
  if (nested) {
    const rawVision = obj.vision_config;
    if (typeof rawVision !== 'object' || rawVision === null) {
      throw new InputError(`${source}: missing field vision_config`);
    }
    vision = rawVision as Record<string, unknown>;
  }
  return { modelType, text, vision };
}
