// Memory estimate of inference or fine-tuning of a LLaMA model, term by term. Every term and its
// source is documented in docs/memory.md; keep the two in step.
import type { TextArch } from '../runners/arch.ts';
import { InputError } from './errors.ts';
import { linearModules, linearParams } from '../runners/arch-modules.ts';
import type { ParamCount } from './params/types.ts';

export const WEIGHT_DTYPES = ['fp32', 'bf16', 'fp16', 'int8', 'nf4', 'int4'] as const;
export type WeightDtype = (typeof WEIGHT_DTYPES)[number];
export const MODES = ['inference', 'finetune'] as const;
export type Mode = (typeof MODES)[number];
export const OPTIMIZERS = ['adamw', 'paged-adamw-8bit'] as const;
export type Optimizer = (typeof OPTIMIZERS)[number];

/**
 * Bits per quantized weight, scale constants included:
 * - nf4: 4 bits + double-quantized block constants: 8/64 + 32/(64*256) = 0.127 bits
 *   (QLoRA paper, arXiv 2305.14314, section 3 "Double Quantization").
 * - int4: 4 bits + one fp16 scale per group of 128 (GPTQ/AWQ/ORT MatMulNBits block 128,
 *   symmetric): 4 + 16/128 = 4.125 bits.
 * - int8: LLM.int8() row-wise absmax: 8 bits + one fp32 scale per output row, counted per
 *   module in `quantizedLinearBytes`.
 */
export const NF4_BITS_PER_PARAM = 4 + 8 / 64 + 32 / (64 * 256);
export const INT4_BITS_PER_PARAM = 4 + 16 / 128;

/** Bytes per element of the compute dtype a weight dtype runs in (quantized weights compute in bf16). */
export function computeBytes(dtype: WeightDtype): number {
  return dtype === 'fp32' ? 4 : 2;
}

export interface Gpu {
  name: string;
  bytes: number;
}

/** Common GPUs by their marketed memory (GiB as nvidia-smi reports it; H200 141 GB decimal). */
export const GPUS: Gpu[] = [
  { name: 'RTX 4090 24GB', bytes: 24 * 2 ** 30 },
  { name: 'L40S / A6000 48GB', bytes: 48 * 2 ** 30 },
  { name: 'A100 / H100 80GB', bytes: 80 * 2 ** 30 },
  { name: 'H200 141GB', bytes: 141e9 },
];

export interface MemoryInput {
  arch: TextArch;
  params: ParamCount;
  /** Parameters the PEFT method adds to the model (null: no PEFT). */
  peftAddedParams: number | null;
  /** Trainable parameters (PEFT: the method's; full fine-tune: every parameter). */
  trainableParams: number;
  mode: Mode;
  dtype: WeightDtype;
  seq: number;
  batch: number;
  optimizer: Optimizer;
  gradientCheckpointing: boolean;
}

export interface MemoryEstimate {
  weights_bytes: number;
  kv_cache_bytes: number;
  activation_bytes: number;
  gradient_bytes: number;
  optimizer_bytes: number;
  total_bytes: number;
  fits: Record<string, boolean>;
}

/**
 * Weights of the matmul layers that quantization replaces (every decoder linear and the MoE
 * experts), as opposed to embeddings, norms and lm_head, which quantizers keep in 16-bit
 * (bitsandbytes via transformers skips `lm_head`; embeddings are not Linear).
 */
export function quantizableParams(a: TextArch): number {
  let n = 0;
  for (const m of linearModules(a)) if (m.group !== 'lm_head') n += linearParams(m);
  if (a.moe) n += a.moe.moeLayers.length * a.moe.numExperts * 3 * a.hiddenSize * a.moe.expertIntermediateSize;
  return n;
}

function quantizedLinearBytes(a: TextArch, dtype: WeightDtype, quantizable: number): number {
  if (dtype === 'nf4') return (quantizable * NF4_BITS_PER_PARAM) / 8;
  if (dtype === 'int4') return (quantizable * INT4_BITS_PER_PARAM) / 8;
  if (dtype === 'int8') {
    // One fp32 absmax per output row of every decoder linear and expert.
    let rows = 0;
    for (const m of linearModules(a)) if (m.group !== 'lm_head') rows += m.outFeatures * Math.max(1, m.layers.length);
    if (a.moe) rows += a.moe.moeLayers.length * a.moe.numExperts * (2 * a.moe.expertIntermediateSize + a.hiddenSize);
    return quantizable + rows * 4;
  }
  return quantizable * computeBytes(dtype);
}

/** Elements saved per token per decoder layer for the backward pass (see docs/memory.md). */
export function savedElementsPerTokenPerLayer(a: TextArch): number {
  const q = a.numHeads * a.headDim;
  const kv = a.numKvHeads * a.headDim;
  // layer input, normed input, q, k, v, attention output, residual, normed residual: the
  // attention block; gate, up, silu(gate), silu(gate)*up: the SwiGLU MLP.
  const inter = a.moe ? a.moe.expertIntermediateSize * (a.moe.topK + 1) : a.intermediateSize;
  return 4 * a.hiddenSize + q + 2 * kv + q + 4 * inter;
}

function kvCacheBytes(a: TextArch, seq: number, batch: number, bytes: number): number {
  const cross = new Set(a.crossAttentionLayers);
  const noRope = new Set(a.noRopeLayers);
  let tokens = 0;
  for (let layer = 0; layer < a.numLayers; layer++) {
    if (cross.has(layer)) continue; // cross-attention keys/values come from the image, not the text cache
    // Llama 4 RoPE layers attend within chunks, so their cache holds at most one chunk.
    const chunked = a.attentionChunkSize !== null && !noRope.has(layer);
    tokens += chunked ? Math.min(seq, a.attentionChunkSize!) : seq;
  }
  return 2 * tokens * batch * a.numKvHeads * a.headDim * bytes;
}

export function estimateMemory(input: MemoryInput): MemoryEstimate {
  const { arch: a, params, mode, dtype, seq, batch } = input;
  if (!Number.isInteger(seq) || seq <= 0) throw new InputError(`--seq must be a positive integer, got ${seq}`);
  if (!Number.isInteger(batch) || batch <= 0) throw new InputError(`--batch must be a positive integer, got ${batch}`);
  const cb = computeBytes(dtype);
  const quantizable = quantizableParams(a);
  const rest = params.total - quantizable;
  // PEFT parameters (LoRA A/B, adaption prompts...) live in the compute dtype on top of the base.
  const adapter = input.peftAddedParams ?? 0;
  const weights = quantizedLinearBytes(a, dtype, quantizable) + rest * cb + adapter * cb;

  let kv = 0;
  let activation: number;
  let gradient = 0;
  let optimizer = 0;
  const tokens = seq * batch;
  if (mode === 'inference') {
    kv = kvCacheBytes(a, seq, batch, cb);
    // One layer's transient tensors (memory-efficient attention keeps no S x S scores) plus the
    // fp32 logits over the whole sequence, which loglikelihood scoring needs.
    activation = tokens * savedElementsPerTokenPerLayer(a) * cb + tokens * a.vocabSize * 4;
  } else {
    const perLayer = tokens * savedElementsPerTokenPerLayer(a) * cb;
    // Gradient checkpointing keeps each layer's input and recomputes one layer at a time.
    const stored = input.gradientCheckpointing ? a.numLayers * tokens * a.hiddenSize * cb + perLayer : a.numLayers * perLayer;
    // fp32 logits and their gradient (HF upcasts logits for the loss).
    activation = stored + 2 * tokens * a.vocabSize * 4;
    gradient = input.trainableParams * cb;
    // AdamW: two fp32 moments per trainable parameter; 8-bit: two uint8 moments plus one fp32
    // absmax per block of 256 values each (bitsandbytes blockwise 8-bit optimizers).
    optimizer = input.optimizer === 'adamw' ? input.trainableParams * 8 : input.trainableParams * 2 * (1 + 4 / 256);
  }
  const total = weights + kv + activation + gradient + optimizer;
  const fits: Record<string, boolean> = {};
  for (const gpu of GPUS) fits[gpu.name] = total <= gpu.bytes;
  const round = Math.round;
  return {
    weights_bytes: round(weights),
    kv_cache_bytes: round(kv),
    activation_bytes: round(activation),
    gradient_bytes: round(gradient),
    optimizer_bytes: round(optimizer),
    total_bytes: round(weights) + round(kv) + round(activation) + round(gradient) + round(optimizer),
    fits,
  };
}
