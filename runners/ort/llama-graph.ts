// Builds the ONNX graph of a LLaMA-family text model (LLaMA 1 to 4) from its architecture and its
// checkpoint's weights, in plain ONNX ops, fp32 or fp16 (`dtype`). Inputs and outputs follow transformers.js /
// optimum naming so an exported directory loads there too:
//   input_ids [b, s] int64, attention_mask [b, past + s] int64, position_ids [b, s] int64,
//   past_key_values.N.key / .value [b, kv_heads, past, d]  ->  logits [b, s, vocab],
//   present.N.key / .value [b, kv_heads, past + s, d].
// position_ids must be cumsum(attention_mask) - 1 at the query slots (what transformers.js feeds):
// keys get their positions the same way, which is what makes left padding exact, and chunked
// attention and causality are decided on positions. Every feature is switched by config, never by
// model name; the float64 reference (runners/reference.ts) is the oracle each graph is tested against.
import type { ModelArch } from '../arch.ts';
import { InputError } from '../../results/errors.ts';
import { layerPrefix, textTensorSpecs } from '../hf/tensor-names.ts';
import { defaultInvFreq, ropeInvFreq } from '../reference-rope.ts';
import { layerUsesRope } from '../reference.ts';
import type { TemperatureTuning, TensorSource } from '../reference-weights.ts';
import { attentionBlock, denseMlpBlock, moeBlock, type AttentionPromptHook, type DenseMlpNames, type SharedValues } from './llama-blocks.ts';
import { fusedAttentionBlock, fusedRmsNorm, fusedRotarySupported, fusedSkipRmsNorm, gqaInputs, rotaryCaches, type FusedShared } from './llama-fused.ts';
import { GraphOps } from './llama-ops.ts';
import { OnnxGraphBuilder } from './onnx-builder.ts';

/**
 * Compute dtype of the graph. fp16 stores weights and activations in float16 and keeps float32 where
 * HF's fp16 LLaMA does (RMSNorm statistics, attention softmax with its mask, RoPE angles, logits);
 * its inputs and outputs stay float32 (KV cache and logits), so OrtLlamaModel feeds either graph.
 */
export const COMPUTE_DTYPES = ['fp32', 'fp16'] as const;
export type ComputeDtype = (typeof COMPUTE_DTYPES)[number];

export const pastKeyName = (layer: number): string => `past_key_values.${layer}.key`;
export const pastValueName = (layer: number): string => `past_key_values.${layer}.value`;
export const presentKeyName = (layer: number): string => `present.${layer}.key`;
export const presentValueName = (layer: number): string => `present.${layer}.value`;

export interface LlamaGraphOptions {
  /** Llama 4 attention temperature tuning (reference-weights.ts temperatureTuningFrom), or null. */
  temperatureTuning: TemperatureTuning | null;
  /**
   * Use ORT contrib ops (GroupQueryAttention, RotaryEmbedding, SkipSimplifiedLayerNormalization)
   * where they apply. Exact for unpadded, left- and right-padded batches (see llama-fused.ts).
   */
  fused?: boolean;
  /**
   * Write the weights to `path` (ONNX external data, named `location` in the model) instead of into
   * the protobuf: needed past 2 GiB, and keeps one weight tensor at a time in memory.
   */
  externalData?: { path: string; location: string };
  /** Add the scalar int64 input `num_logits_to_keep` (not fed by transformers.js: off for export). */
  logitsToKeep?: boolean;
  /**
   * Add the int64 input `logits_indices` [r, k]: rows of the flattened [b * s] positions whose logits
   * are computed, returned as logits [r, k, vocab] (feed arange(b * s) as [b, s] for all of them).
   * Lets the multiple-choice scorer skip lm_head at padding and at positions it does not read.
   * Not fed by transformers.js (off for export); excludes `logitsToKeep`, which it subsumes.
   */
  logitsIndices?: boolean;
  /** PEFT hook: adapter side branches, NF4 base linears and adaption prompts (runners/ort/llama-peft.ts). */
  peft?: LlamaGraphPeft;
  /** Compute dtype, default fp32 (see COMPUTE_DTYPES). */
  dtype?: ComputeDtype;
  /**
   * Early fusion hook (LLaMA 4 images, runners/ort/llama4-text-graph.ts): receives the token
   * embeddings [b * s, hidden] and returns the rows the decoder layers read instead. Absent, the
   * graph is unchanged.
   */
  embeddings?: (o: GraphOps, tokenEmbeds: string) => string;
}

// --- PEFT hook: what an adapter changes in the graph; absent, the graph is the plain model.
export interface LlamaGraphPeft {
  /** The GraphOps the graph is built with (a subclass whose `linear` adds the adapter's branches). */
  createOps(g: OnnxGraphBuilder): GraphOps;
  /**
   * Stores checkpoint tensor `name` itself (QLoRA: NF4 bytes) and returns the value name the graph
   * should use for it, or null for the plain fp32 initializer.
   */
  weight?(o: GraphOps, name: string, shape: readonly number[], read: () => Float32Array): string | null;
  /** LLaMA-Adapter prompt attention of decoder layer `layer`, or null. */
  prompt?(layer: number): AttentionPromptHook | null;
}
// --- end PEFT hook

/** The graph covers LLaMA text models; 3.2 Vision (mllama) needs cross-attention it lacks. */
function assertTextModel(arch: ModelArch): void {
  if (arch.modelType === 'mllama') {
    throw new InputError('mllama (LLaMA 3.2 Vision) checkpoints are not supported by the ORT graph yet; use a text model');
  }
}

/** fp32 bytes of a text model's weights, from its config alone. */
export function llamaWeightBytes(arch: ModelArch): number {
  assertTextModel(arch);
  return textTensorSpecs(arch).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 4), 0);
}

// A finite "minus infinity" for masked scores: a fully masked (padding) query row then softmaxes
// to a harmless uniform row instead of NaN. Real scores are many orders of magnitude smaller.
const MASKED = -1e9;
// protobuf messages are limited to 2 GiB; weights stored inline must leave room for the graph.
const PROTOBUF_LIMIT = 2 ** 31 - 64 * 2 ** 20;

/** Rotary cos/sin tables from position_ids, in fp32 as HF computes them (it forces float32 for RoPE). */
function rotaryTables(o: GraphOps, arch: ModelArch, positions: string): { cos: string; sin: string } {
  const t = arch.text;
  const d = t.headDim;
  let invFreq: string;
  if (t.ropeScaling?.ropeType !== 'dynamic') {
    // Computed in float64 exactly as the reference does, then rounded once to fp32.
    invFreq = o.g.initializer('rope_inv_freq', Float32Array.from(ropeInvFreq(t, 0)), [d / 2]);
  } else {
    // Dynamic NTK (transformers dynamic_rope_update): with L = max(position_ids) + 1 > max_pos,
    // theta' = theta * s^(d/(d-2)), s = factor * L / max_pos - (factor - 1), so
    // inv_freq'[i] = inv_freq[i] * s^(-2i/(d-2)); s is clamped to 1, which is the unscaled case.
    const factor = t.ropeScaling.factor;
    const base = o.g.initializer('rope_inv_freq_base', Float32Array.from(defaultInvFreq(t.ropeTheta, d)), [d / 2]);
    const exponents = o.g.initializer('rope_dynamic_exponents', Float32Array.from({ length: d / 2 }, (_, i) => (-2 * i) / (d - 2)), [d / 2]);
    const length = o.op('Add', [o.op('ReduceMax', [positions], { keepdims: 0 }), o.f32(1)]);
    const s = o.op('Sub', [o.op('Mul', [length, o.f32(factor / t.maxPositionEmbeddings)]), o.f32(factor - 1)]);
    invFreq = o.op('Mul', [base, o.op('Pow', [o.op('Max', [s, o.f32(1)]), exponents])]);
  }
  const angles = o.op('Mul', [o.unsqueeze(positions, [2]), invFreq]); // [b, s, d/2]
  if (arch.modelType === 'llama4') {
    // Interleaved pairs: tables [b, 1, s, d/2, 1] against x viewed as [b, heads, s, d/2, 2].
    return { cos: o.fromF32(o.unsqueeze(o.op('Cos', [angles]), [1, 4])), sin: o.fromF32(o.unsqueeze(o.op('Sin', [angles]), [1, 4])) };
  }
  const both = o.op('Concat', [angles, angles], { axis: -1 }); // HF: emb = cat(freqs, freqs)
  // HF computes cos/sin in float32 and casts them to the activations' dtype.
  return { cos: o.fromF32(o.unsqueeze(o.op('Cos', [both]), [1])), sin: o.fromF32(o.unsqueeze(o.op('Sin', [both]), [1])) };
}

/** Additive masks [b, 1, 1, s, T]: 0 where query may attend key, MASKED elsewhere. */
function attentionMasks(o: GraphOps, arch: ModelArch, positionIds: string): { globalMask: string; chunkedMask: string | null } {
  const keyPositions = o.op('Sub', [o.op('CumSum', ['attention_mask', o.i64([1], true)]), o.i64([1], true)]); // [b, T]
  const keyPos = o.unsqueeze(keyPositions, [1]); // [b, 1, T]
  const queryPos = o.unsqueeze(positionIds, [2]); // [b, s, 1]
  const valid = o.unsqueeze(o.op('Cast', ['attention_mask'], { to: 9 }), [1]); // bool [b, 1, T]
  const allowed = o.op('And', [o.op('LessOrEqual', [keyPos, queryPos]), valid]);
  const toAdditive = (ok: string) => o.unsqueeze(o.op('Where', [ok, o.f32(0), o.f32(MASKED)]), [1, 2]);
  const chunk = arch.text.attentionChunkSize;
  let chunkedMask: string | null = null;
  if (chunk !== null) {
    // transformers create_chunked_causal_mask: key k is visible from query q iff k // chunk == q // chunk.
    const size = o.i64([chunk], true);
    const sameChunk = o.op('Equal', [o.op('Div', [keyPos, size]), o.op('Div', [queryPos, size])]);
    chunkedMask = toAdditive(o.op('And', [allowed, sameChunk]));
  }
  return { globalMask: toAdditive(allowed), chunkedMask };
}

/** Llama 4 temperature tuning per query: log(floor((pos + 1) / floor_scale) + 1) * attn_scale + 1. */
function temperatureScale(o: GraphOps, tuning: TemperatureTuning, positions: string): string {
  const floored = o.op('Floor', [o.op('Div', [o.op('Add', [positions, o.f32(1)]), o.f32(tuning.floorScale)])]);
  const scale = o.op('Add', [o.op('Mul', [o.op('Log', [o.op('Add', [floored, o.f32(1)])]), o.f32(tuning.attnScale)]), o.f32(1)]);
  return o.fromF32(o.unsqueeze(scale, [1, 3])); // [b, 1, s, 1]
}

/**
 * The graph's serialized ModelProto. Weights are read one tensor at a time from `weights` (shapes
 * checked against config.json) and stored as initializers in their torch [out, in] layout.
 */
export function buildLlamaGraph(arch: ModelArch, weights: TensorSource, options: LlamaGraphOptions): Uint8Array {
  const t = arch.text;
  const isLlama4 = arch.modelType === 'llama4';
  const g = new OnnxGraphBuilder('llama');
  if (options.externalData) g.externalData(options.externalData.path, options.externalData.location);
  const o = options.peft ? options.peft.createOps(g) : new GraphOps(g);
  const fp16 = options.dtype === 'fp16';
  // The PEFT branches (LoRA inputs, NF4 MatMulBnb4, adaption prompts) are built for fp32 activations.
  if (fp16 && options.peft) throw new InputError('--dtype fp16 with --peft is not supported by the ORT graph: run adapters with --dtype fp32');
  o.floatType = fp16 ? 'float16' : 'float32';
  const weightBytes = llamaWeightBytes(arch) / (fp16 ? 2 : 1);
  if (!options.externalData && weightBytes >= PROTOBUF_LIMIT) {
    throw new InputError(`${(weightBytes / 2 ** 30).toFixed(1)} GiB of ${options.dtype ?? 'fp32'} weights do not fit one ONNX protobuf (2 GiB limit); build with external data (OrtLlamaModel does so by itself past 1 GiB)`);
  }
  const shapes = new Map(textTensorSpecs(arch).map((s) => [s.name, s.shape]));
  const weight = (name: string): string => {
    const shape = shapes.get(name);
    if (!shape) throw new Error(`llama graph: no spec for tensor ${name}`);
    const hooked = options.peft?.weight?.(o, name, shape, () => weights.readFloat32(name, { expectShape: shape })) ?? null;
    if (hooked !== null) return hooked;
    return o.floatInitializer(name, weights.readFloat32(name, { expectShape: shape }), shape);
  };
  const maybe = (name: string): string | null => (shapes.has(name) ? weight(name) : null);
  const dense = (prefix: string): DenseMlpNames => ({
    gate: weight(`${prefix}.gate_proj.weight`),
    up: weight(`${prefix}.up_proj.weight`),
    down: weight(`${prefix}.down_proj.weight`),
    gateBias: maybe(`${prefix}.gate_proj.bias`),
    upBias: maybe(`${prefix}.up_proj.bias`),
    downBias: maybe(`${prefix}.down_proj.bias`),
  });

  g.input('input_ids', 'int64', ['batch_size', 'sequence_length']);
  g.input('attention_mask', 'int64', ['batch_size', 'total_sequence_length']);
  g.input('position_ids', 'int64', ['batch_size', 'sequence_length']);
  const kvDims = ['batch_size', t.numKvHeads, 'past_sequence_length', t.headDim];
  const presentDims = ['batch_size', t.numKvHeads, 'total_sequence_length', t.headDim];
  for (let i = 0; i < t.numLayers; i++) {
    g.input(pastKeyName(i), 'float32', kvDims);
    g.input(pastValueName(i), 'float32', kvDims);
  }

  const positions = o.op('Cast', ['position_ids'], { to: 1 }); // float [b, s]
  const anyRope = Array.from({ length: t.numLayers }, (_, i) => layerUsesRope(t, i)).some(Boolean);
  const rope = anyRope ? rotaryTables(o, arch, positions) : null;
  const shared: SharedValues = {
    batchSeq: o.op('Shape', ['input_ids']),
    cos: rope?.cos ?? null,
    sin: rope?.sin ?? null,
    ...attentionMasks(o, arch, 'position_ids'),
    temperature: options.temperatureTuning && t.noRopeLayers.length > 0 ? temperatureScale(o, options.temperatureTuning, positions) : null,
  };

  const fused = options.fused === true;
  // fp16 graphs fuse the norms only; attention stays plain (llama-fused.ts says why).
  const fusedGqa = fused && !fp16;
  const fusedRope = fusedGqa && fusedRotarySupported(t);
  // Rotary tables are only needed by fused RoPE layers that are not chunked (those stay plain).
  const fusedRopeLayers = Array.from({ length: t.numLayers }, (_, i) => layerUsesRope(t, i) && t.attentionChunkSize === null).some(Boolean);
  const fusedShared: FusedShared | null = fusedGqa
    ? {
        batchSeq: shared.batchSeq,
        ...(fusedRope && fusedRopeLayers ? rotaryCaches(o, t, ropeInvFreq(t, 0)) : { cosCache: '', sinCache: '' }),
        ...gqaInputs(o, 'attention_mask', shared.globalMask),
        temperature: shared.temperature ? o.op('Squeeze', [shared.temperature, o.i64([1])]) : null,
      }
    : null;

  const embed = weight('model.embed_tokens.weight');
  let hidden = o.reshape(o.op('Gather', [embed, 'input_ids'], { axis: 0 }), [-1, t.hiddenSize]); // [N, h]
  if (options.embeddings) hidden = options.embeddings(o, hidden);
  // Pre-norm residual stream: add the previous block's output, then normalise for the next block
  // (one SkipSimplifiedLayerNormalization on the fused path).
  const addAndNorm = (delta: string | null, normWeight: string): string => {
    if (fused) {
      if (delta === null) return fusedRmsNorm(o, hidden, normWeight, t.rmsNormEps);
      const { normed, sum } = fusedSkipRmsNorm(o, delta, hidden, normWeight, t.rmsNormEps);
      hidden = sum;
      return normed;
    }
    if (delta !== null) hidden = o.op('Add', [hidden, delta]);
    return o.rmsNorm(hidden, normWeight, t.rmsNormEps);
  };
  let delta: string | null = null;
  for (let i = 0; i < t.numLayers; i++) {
    const p = layerPrefix(i);
    const attn = `${p}.self_attn`;
    const useRope = layerUsesRope(t, i);
    const normed = addAndNorm(delta, weight(`${p}.input_layernorm.weight`));
    const attnWeights = {
      q: weight(`${attn}.q_proj.weight`),
      k: weight(`${attn}.k_proj.weight`),
      v: weight(`${attn}.v_proj.weight`),
      o: weight(`${attn}.o_proj.weight`),
      qBias: maybe(`${attn}.q_proj.bias`),
      kBias: maybe(`${attn}.k_proj.bias`),
      vBias: maybe(`${attn}.v_proj.bias`),
      oBias: maybe(`${attn}.o_proj.bias`),
    };
    const layer = {
      useRope,
      interleaved: isLlama4,
      qkNorm: isLlama4 && t.useQkNorm && useRope,
      chunked: t.attentionChunkSize !== null && useRope,
      pastKey: pastKeyName(i),
      pastValue: pastValueName(i),
      presentKey: presentKeyName(i),
      presentValue: presentValueName(i),
      prompt: options.peft?.prompt?.(i) ?? null,
    };
    // GroupQueryAttention has no chunked mask, and precomputed rotary tables cannot follow `dynamic`.
    // (An adaption prompt needs the plain block's queries.)
    const fusedAttention = fusedShared !== null && !layer.chunked && (!useRope || fusedRope) && layer.prompt === null;
    const attnOut = fusedAttention ? fusedAttentionBlock(o, t, fusedShared, attnWeights, layer, normed) : attentionBlock(o, t, shared, attnWeights, layer, normed);
    const normed2 = addAndNorm(attnOut, weight(`${p}.post_attention_layernorm.weight`));
    if (isLlama4 && t.moe!.moeLayers.includes(i)) {
      delta = moeBlock(o, t, {
        router: weight(`${p}.feed_forward.router.weight`),
        gateUp: weight(`${p}.feed_forward.experts.gate_up_proj`),
        down: weight(`${p}.feed_forward.experts.down_proj`),
        shared: dense(`${p}.feed_forward.shared_expert`),
      }, normed2);
    } else {
      delta = denseMlpBlock(o, dense(isLlama4 ? `${p}.feed_forward` : `${p}.mlp`), normed2);
    }
  }
  let final = addAndNorm(delta, weight('model.norm.weight'));
  let logitsShape = o.op('Concat', [shared.batchSeq, o.i64([t.vocabSize])], { axis: 0 });
  if (options.logitsIndices && options.logitsToKeep) throw new Error('llama graph: logitsIndices and logitsToKeep are exclusive (indices cover the last-k case)');
  if (options.logitsIndices) {
    // The norm is per row, so gathering its output equals gathering before it; lm_head (vocab x
    // hidden, 128K x 2048 for LLaMA 3) then runs on the chosen rows only.
    const indices = g.input('logits_indices', 'int64', ['logits_batch', 'logits_rows']);
    final = o.reshape(o.op('Gather', [final, indices], { axis: 0 }), [-1, t.hiddenSize]);
    logitsShape = o.op('Concat', [o.op('Shape', [indices]), o.i64([t.vocabSize])], { axis: 0 });
  } else if (options.logitsToKeep) {
    // HF `logits_to_keep`: project only the last k positions (0 keeps all). A prefill then returns
    // [b, 1, vocab] instead of [b, s, vocab], which for a 128K vocabulary is most of its output.
    const keep = g.input('num_logits_to_keep', 'int64', []);
    const start = o.op('Neg', [o.unsqueeze(keep, [0])]);
    const perRow = o.op('Slice', [o.reshape(final, o.op('Concat', [shared.batchSeq, o.i64([t.hiddenSize])], { axis: 0 })), start, o.i64([2 ** 53]), o.i64([1])]);
    final = o.reshape(perRow, [-1, t.hiddenSize]);
    logitsShape = o.op('Concat', [o.op('Shape', [perRow], { end: 2 }), o.i64([t.vocabSize])], { axis: 0 });
  }
  // Tied models (3.2 1B/3B) project with embed_tokens itself; Gemm's transB needs no second copy.
  const lmHead = t.tieWordEmbeddings ? embed : weight('lm_head.weight');
  const logits2d = o.toF32(o.linear(final, lmHead, null)); // HF returns fp16 models' logits as float32
  g.node('Reshape', [logits2d, logitsShape], ['logits']);
  g.output('logits', 'float32', ['batch_size', 'sequence_length', t.vocabSize]);
  for (let i = 0; i < t.numLayers; i++) {
    g.output(presentKeyName(i), 'float32', presentDims);
    g.output(presentValueName(i), 'float32', presentDims);
  }
  return g.toBytes();
}
