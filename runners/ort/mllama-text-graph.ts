// The ONNX graph of LLaMA 3.2 Vision's text model (MllamaForCausalLM inside
// MllamaForConditionalGeneration), fp32, plain ONNX ops: the LLaMA self-attention layers
// (llama-blocks.ts) with MllamaCrossAttentionDecoderLayers at text_config.cross_attention_layers,
// whose K/V are computed from the projected image tokens. Oracle: referenceVisionTokenLogprobs /
// referenceTokenLogprobs (runners/vision/mllama-text.ts, runners/reference.ts); parity in
// test/parity/ort-mllama.test.ts. Batch 1, no padding:
//   input_ids [1, s] int64, position_ids [1, s] int64,
//   past_key_values.N.key / .value [1, kv_heads, past, d] (self-attention layers only),
//   cross_attention_states [image tokens, hidden] float32 (mllama-vision-graph.ts's output),
//   cross_attention_mask [s, max_num_tiles] float32 (HF's per-row tile mask, 0/1),
//   logits_indices [k] int64 (rows of the s positions whose logits are computed)
//   ->  logits [k, vocab], present.N.key / .value.
// HF's text-only path skips the cross-attention layers; fed zero states and an all-zero tile mask,
// each of them is exactly the identity instead (v_proj(0) = 0 empties the attention branch, and a
// row that sees no tile has its MLP branch multiplied by 0), so one graph serves both paths.
import type { ModelArch } from '../arch.ts';
import { InputError } from '../../results/errors.ts';
import { layerPrefix } from '../hf/tensor-names.ts';
import { ropeInvFreq } from '../reference-rope.ts';
import { mllamaTensorSpecs } from '../tiny-vision.ts';
import type { TensorGetter } from '../vision/mllama-reference.ts';
import { attentionBlock, denseMlpBlock, type DenseMlpNames, type SharedValues } from './llama-blocks.ts';
import { pastKeyName, pastValueName, presentKeyName, presentValueName, type LlamaGraphPeft } from './llama-graph.ts';
import { GraphOps } from './llama-ops.ts';
import { OnnxGraphBuilder } from './onnx-builder.ts';

const MASKED = -1e9; // as llama-graph.ts: a finite -inf, so a masked row can never turn into NaN
const PREFIX = 'language_model.';

/** Layer indices of the text model that are self-attention layers (they own a KV cache slot). */
export function mllamaSelfLayers(arch: ModelArch): number[] {
  return Array.from({ length: arch.text.numLayers }, (_, i) => i).filter((i) => !arch.text.crossAttentionLayers.includes(i));
}

/**
 * Serialized ModelProto of the mllama text model. `imageTokens` is the row count of
 * cross_attention_states (max_num_tiles * patches per tile) and `tiles` max_num_tiles.
 */
export function buildMllamaTextGraph(arch: ModelArch, get: TensorGetter, imageTokens: number, tiles: number, peft?: LlamaGraphPeft): Uint8Array {
  const t = arch.text;
  if (arch.modelType !== 'mllama') throw new InputError('mllama text graph: the checkpoint is not an mllama (LLaMA 3.2 Vision) model');
  if (t.ropeScaling?.ropeType === 'dynamic') throw new InputError('mllama text graph: rope_scaling dynamic is not supported (LLaMA 3.2 Vision uses llama3)');
  if (imageTokens % tiles !== 0) throw new Error(`mllama text graph: ${imageTokens} image tokens do not split into ${tiles} tiles`);
  const { hiddenSize: H, numHeads, numKvHeads, headDim: d } = t;
  const group = numHeads / numKvHeads;
  if (!Number.isInteger(group)) throw new InputError(`text_config: num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  const g = new OnnxGraphBuilder('mllama_text');
  // PEFT hook (runners/ort/mllama-peft.ts): the text LLaMA graph's adapter ops, NF4 weights and prompts.
  const o = peft ? peft.createOps(g) : new GraphOps(g);
  const shapes = new Map(mllamaTensorSpecs(arch).map((s) => [s.name, s.shape]));
  const w = (name: string): string => {
    const full = PREFIX + name;
    const shape = shapes.get(full);
    if (!shape) throw new Error(`mllama text graph: no spec for tensor ${full}`);
    const read = (): Float32Array => {
      const data = get(full);
      if (data.length !== shape.reduce((a, b) => a * b, 1)) throw new InputError(`tensor ${full}: ${data.length} values, expected shape [${shape.join(', ')}] from config.json`);
      return data;
    };
    // Initializers take the text model's names (no `language_model.`): the PEFT ops find a module's
    // adapter by them, as in the text LLaMA graph.
    return peft?.weight?.(o, name, shape, read) ?? g.initializer(name, read(), shape);
  };
  const dense = (p: string): DenseMlpNames => ({ gate: w(`${p}.gate_proj.weight`), up: w(`${p}.up_proj.weight`), down: w(`${p}.down_proj.weight`), gateBias: null, upBias: null, downBias: null });

  g.input('input_ids', 'int64', [1, 'sequence_length']);
  g.input('position_ids', 'int64', [1, 'sequence_length']);
  const selfLayers = mllamaSelfLayers(arch);
  const kvDims = [1, numKvHeads, 'past_sequence_length', d];
  for (const i of selfLayers) {
    g.input(pastKeyName(i), 'float32', kvDims);
    g.input(pastValueName(i), 'float32', kvDims);
  }
  g.input('cross_attention_states', 'float32', [imageTokens, H]);
  g.input('cross_attention_mask', 'float32', ['sequence_length', tiles]);
  g.input('logits_indices', 'int64', ['logits_rows']);

  // RoPE tables from position_ids (rotate_half layout [1, 1, s, d]) and the causal mask; keys are
  // the cached positions 0..past-1 followed by the new ones.
  const positions = o.op('Cast', ['position_ids'], { to: 1 });
  const invFreq = g.initializer('rope_inv_freq', Float32Array.from(ropeInvFreq(t, 0)), [d / 2]);
  const angles = o.op('Mul', [o.unsqueeze(positions, [2]), invFreq]);
  const both = o.op('Concat', [angles, angles], { axis: -1 });
  const pastLength = o.op('Shape', [pastKeyName(selfLayers[0]!)], { start: 2, end: 3 });
  const total = o.op('Add', [pastLength, o.op('Shape', ['input_ids'], { start: 1, end: 2 })]);
  const keyPos = o.op('Range', [o.i64([0], true), o.op('Squeeze', [total, o.i64([0])]), o.i64([1], true)]); // [T]
  const allowed = o.op('LessOrEqual', [o.unsqueeze(keyPos, [0]), o.reshape('position_ids', [-1, 1])]); // [s, T]
  const shared: SharedValues = {
    batchSeq: o.op('Shape', ['input_ids']),
    cos: o.unsqueeze(o.op('Cos', [both]), [1]),
    sin: o.unsqueeze(o.op('Sin', [both]), [1]),
    globalMask: o.op('Where', [allowed, o.f32(0), o.f32(MASKED)]),
    chunkedMask: null,
    temperature: null,
  };

  // The cross-attention mask over image tokens [s, N_img]: HF expands each tile's 0/1 over its
  // tokens, turns it additive, and multiplies by the full-text-row mask (1 where the row sees any
  // tile), so rows that see no tile attend over every image token; their MLP branch is zeroed.
  const tileMask = 'cross_attention_mask';
  const rowMask = o.op('ReduceMax', [tileMask, o.i64([-1])], { keepdims: 1 }); // [s, 1]
  const perToken = o.reshape(o.op('Expand', [o.unsqueeze(tileMask, [2]), o.i64([1, 1, imageTokens / tiles])]), [-1, imageTokens]);
  const crossMask = o.op('Mul', [o.op('Mul', [o.op('Sub', [o.f32(1), perToken]), o.f32(MASKED)]), rowMask]);
  const states = 'cross_attention_states';

  const crossLayer = (x: string, p: string): string => {
    const normed = o.rmsNorm(x, w(`${p}.input_layernorm.weight`), t.rmsNormEps);
    const q = o.rmsNorm(o.reshape(o.linear(normed, w(`${p}.cross_attn.q_proj.weight`), null), [-1, numHeads, d]), w(`${p}.cross_attn.q_norm.weight`), t.rmsNormEps);
    const k = o.rmsNorm(o.reshape(o.linear(states, w(`${p}.cross_attn.k_proj.weight`), null), [imageTokens, numKvHeads, d]), w(`${p}.cross_attn.k_norm.weight`), t.rmsNormEps);
    const v = o.reshape(o.linear(states, w(`${p}.cross_attn.v_proj.weight`), null), [imageTokens, numKvHeads, d]);
    // GQA as in llama-blocks: q [kv, group, s, d] against K/V [kv, 1, N_img, d].
    const q4 = o.reshape(o.transpose(q, [1, 0, 2]), [numKvHeads, group, -1, d]);
    const kT = o.unsqueeze(o.transpose(k, [1, 2, 0]), [1]);
    const v4 = o.unsqueeze(o.transpose(v, [1, 0, 2]), [1]);
    const scores = o.op('Add', [o.op('Mul', [o.op('MatMul', [q4, kT]), o.f32(1 / Math.sqrt(d))]), crossMask]);
    const ctx = o.op('MatMul', [o.op('Softmax', [scores], { axis: -1 }), v4]); // [kv, group, s, d]
    const merged = o.reshape(o.transpose(o.reshape(ctx, [numHeads, -1, d]), [1, 0, 2]), [-1, numHeads * d]);
    const attnGate = o.op('Tanh', [w(`${p}.cross_attn_attn_gate`)]);
    const mid = o.op('Add', [x, o.op('Mul', [o.linear(merged, w(`${p}.cross_attn.o_proj.weight`), null), attnGate])]);
    const mlp = denseMlpBlock(o, dense(`${p}.mlp`), o.rmsNorm(mid, w(`${p}.post_attention_layernorm.weight`), t.rmsNormEps));
    const mlpGate = o.op('Tanh', [w(`${p}.cross_attn_mlp_gate`)]);
    return o.op('Add', [mid, o.op('Mul', [o.op('Mul', [mlp, rowMask]), mlpGate])]);
  };

  // embed_tokens has vocab_size + 8 rows: <|image|> (128256) has an embedding but no lm_head row.
  let hidden = o.reshape(o.op('Gather', [w('model.embed_tokens.weight'), 'input_ids'], { axis: 0 }), [-1, H]);
  for (let i = 0; i < t.numLayers; i++) {
    const p = layerPrefix(i);
    if (t.crossAttentionLayers.includes(i)) {
      hidden = crossLayer(hidden, p);
      continue;
    }
    const attn = `${p}.self_attn`;
    const normed = o.rmsNorm(hidden, w(`${p}.input_layernorm.weight`), t.rmsNormEps);
    const attnOut = attentionBlock(o, t, shared, {
      q: w(`${attn}.q_proj.weight`), k: w(`${attn}.k_proj.weight`), v: w(`${attn}.v_proj.weight`), o: w(`${attn}.o_proj.weight`),
      qBias: null, kBias: null, vBias: null, oBias: null,
    }, {
      useRope: true, interleaved: false, qkNorm: false, chunked: false, prompt: peft?.prompt?.(i) ?? null,
      pastKey: pastKeyName(i), pastValue: pastValueName(i), presentKey: presentKeyName(i), presentValue: presentValueName(i),
    }, normed);
    hidden = o.op('Add', [hidden, attnOut]);
    hidden = o.op('Add', [hidden, denseMlpBlock(o, dense(`${p}.mlp`), o.rmsNorm(hidden, w(`${p}.post_attention_layernorm.weight`), t.rmsNormEps))]);
  }
  // The norm is per row, so lm_head (vocab x hidden) runs on the requested rows only.
  const final = o.rmsNorm(o.op('Gather', [hidden, 'logits_indices'], { axis: 0 }), w('model.norm.weight'), t.rmsNormEps);
  g.node('Identity', [o.linear(final, w('lm_head.weight'), null)], ['logits']);
  g.output('logits', 'float32', ['logits_rows', t.vocabSize]);
  const presentDims = [1, numKvHeads, 'total_sequence_length', d];
  for (const i of selfLayers) {
    g.output(presentKeyName(i), 'float32', presentDims);
    g.output(presentValueName(i), 'float32', presentDims);
  }
  return g.toBytes();
}
