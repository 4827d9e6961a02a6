// The ONNX graph of LLaMA 3.2 Vision's image side: MllamaVisionModel + multi_modal_projector, in
// plain ONNX ops, fp32, with the math of the float64 reference (runners/vision/mllama-reference.ts),
// which is its oracle (test/parity/ort-mllama-vision.test.ts). One image per run, shapes fixed by
// the config (every image is padded to max_num_tiles by the processor):
//   pixel_values [1, max_num_tiles, 3, image_size, image_size] float32,
//   aspect_ratio_ids [1] int64, aspect_ratio_mask [1, max_num_tiles] int64
//   ->  cross_attention_states [max_num_tiles * patches_per_tile, text hidden_size].
import type { ModelArch } from '../arch.ts';
import { InputError } from '../../results/errors.ts';
import { mllamaTensorSpecs } from '../tiny-vision.ts';
import { mllamaVisionArch, patchesPerTile, type MllamaVisionArch, type TensorGetter } from '../vision/mllama-reference.ts';
import { GraphOps } from './llama-ops.ts';
import { OnnxGraphBuilder } from './onnx-builder.ts';

// Finite "minus infinity" for blocked pairs (as llama-graph.ts): no row of this mask is fully
// blocked (real tokens of tile 0 are visible to everyone), so it only has to underflow exp().
const MASKED = -1e9;

/** The fixed sizes of one image through the tower. */
export interface MllamaVisionShape {
  tiles: number;
  /** Patches per tile, class token included. */
  patches: number;
  /** `patches` padded to a multiple of 8 (HF MllamaVisionModel). */
  padded: number;
  /** Rows of cross_attention_states: tiles * patches. */
  tokens: number;
}

export function mllamaVisionShape(v: MllamaVisionArch): MllamaVisionShape {
  const P = patchesPerTile(v);
  const L = P + ((8 - (P % 8)) % 8);
  // Same refusal as the reference: HF's `[-0:]` slice masks every token when P % 8 == 0.
  if (L === P) throw new InputError(`vision_config: image_size/patch_size gives ${P} tokens per tile, a multiple of 8, for which transformers' aspect-ratio mask is degenerate; not supported`);
  return { tiles: v.maxNumTiles, patches: P, padded: L, tokens: v.maxNumTiles * P };
}

/** Serialized ModelProto of the vision tower + projector of an mllama checkpoint. */
export function buildMllamaVisionGraph(arch: ModelArch, get: TensorGetter): Uint8Array {
  if (arch.modelType !== 'mllama' || !arch.vision) throw new InputError('mllama vision graph: the checkpoint is not an mllama (LLaMA 3.2 Vision) model');
  const v = mllamaVisionArch(arch.vision);
  const { tiles: T, patches: P, padded: L } = mllamaVisionShape(v);
  const h = v.hiddenSize;
  const C = v.numChannels;
  const S = v.imageSize;
  const ps = v.patchSize;
  const side = Math.floor(S / ps);
  const N = T * L;
  const heads = v.heads;
  const hd = h / heads;
  if (!Number.isInteger(hd)) throw new InputError(`vision_config: hidden_size ${h} is not divisible by attention_heads ${heads}`);

  const g = new OnnxGraphBuilder('mllama_vision');
  const o = new GraphOps(g);
  const shapes = new Map(mllamaTensorSpecs(arch).map((s) => [s.name, s.shape]));
  const w = (name: string): string => {
    const shape = shapes.get(name);
    if (!shape) throw new Error(`mllama vision graph: no spec for tensor ${name}`);
    const data = get(name);
    if (data.length !== shape.reduce((a, b) => a * b, 1)) throw new InputError(`tensor ${name}: ${data.length} values, expected shape [${shape.join(', ')}] from config.json`);
    return g.initializer(name, data, shape);
  };
  const gate = (name: string): string => o.op('Tanh', [w(name)]); // [1]

  g.input('pixel_values', 'float32', [1, T, C, S, S]);
  g.input('aspect_ratio_ids', 'int64', [1]);
  g.input('aspect_ratio_mask', 'int64', [1, T]);

  // Conv2d patch embedding (kernel = stride = patch, no bias) -> [T, side², h].
  const conv = o.op('Conv', [o.reshape('pixel_values', [T, C, S, S]), w('vision_model.patch_embedding.weight')], { kernel_shape: [ps, ps], strides: [ps, ps] });
  let patches = o.transpose(o.reshape(conv, [T, h, side * side]), [0, 2, 1]);
  // Gated aspect-ratio tile embedding: tile t of every token gets row[ratio id][t] * tanh(gate).
  const tileEmbedding = (prefix: string): string => {
    const row = o.op('Gather', [w(`${prefix}.embedding.weight`), 'aspect_ratio_ids'], { axis: 0 });
    return o.op('Mul', [o.reshape(row, [T, 1, h]), gate(`${prefix}.gate`)]);
  };
  patches = o.op('Add', [patches, tileEmbedding('vision_model.pre_tile_positional_embedding')]);

  // Class token first in each tile, then (1 - g) * position + g * tile-position embeddings.
  const cls = o.op('Expand', [o.reshape(w('vision_model.class_embedding'), [1, 1, h]), o.i64([T, 1, h])]);
  let x = o.op('Concat', [cls, patches], { axis: 1 }); // [T, P, h]
  const posGate = gate('vision_model.gated_positional_embedding.gate');
  const pos = o.op('Mul', [o.op('Sub', [o.f32(1), posGate]), w('vision_model.gated_positional_embedding.embedding')]); // [P, h]
  const tilePos = o.reshape(o.op('Gather', [w('vision_model.gated_positional_embedding.tile_embedding.weight'), 'aspect_ratio_ids'], { axis: 0 }), [T, P, h]);
  x = o.op('Add', [o.op('Add', [x, pos]), o.op('Mul', [tilePos, posGate])]);
  x = o.layerNorm(x, w('vision_model.layernorm_pre.weight'), w('vision_model.layernorm_pre.bias'), 1e-5);
  // Zero padding of each tile to L tokens, after layernorm_pre; then one sequence of T * L tokens.
  x = o.reshape(o.op('Pad', [x, o.i64([0, 0, 0, 0, L - P, 0])]), [N, h]);

  // HF _prepare_aspect_ratio_attention_mask: a token is masked when its tile is padding or it is a
  // padding position, and a pair is blocked only when both are masked.
  const tileIsPadding = o.op('Not', [o.op('Equal', [o.reshape('aspect_ratio_mask', [T, 1]), o.i64([1], true)])]); // [T, 1]
  const padPosition = g.initializer('vision_padding_positions', Uint8Array.from({ length: L }, (_, i) => (i >= P ? 1 : 0)), [1, L], 'bool');
  const masked = o.reshape(o.op('Or', [tileIsPadding, padPosition]), [N]);
  const blocked = o.op('And', [o.unsqueeze(masked, [1]), o.unsqueeze(masked, [0])]);
  const mask = o.op('Where', [blocked, o.f32(MASKED), o.f32(0)]); // [N, N]

  const layer = (input: string, p: string, gated: boolean): string => {
    const normed = o.layerNorm(input, w(`${p}.input_layernorm.weight`), w(`${p}.input_layernorm.bias`), v.normEps);
    const split = (name: string) => o.reshape(o.linear(normed, w(`${p}.self_attn.${name}.weight`), null), [N, heads, hd]);
    const q = o.transpose(split('q_proj'), [1, 0, 2]); // [heads, N, hd]
    const kT = o.transpose(split('k_proj'), [1, 2, 0]); // [heads, hd, N]
    const val = o.transpose(split('v_proj'), [1, 0, 2]);
    const scores = o.op('Add', [o.op('Mul', [o.op('MatMul', [q, kT]), o.f32(1 / Math.sqrt(hd))]), mask]);
    const ctx = o.op('MatMul', [o.op('Softmax', [scores], { axis: -1 }), val]); // [heads, N, hd]
    let attn = o.linear(o.reshape(o.transpose(ctx, [1, 0, 2]), [N, h]), w(`${p}.self_attn.o_proj.weight`), null);
    if (gated) attn = o.op('Mul', [attn, gate(`${p}.gate_attn`)]);
    const mid = o.op('Add', [input, attn]);
    const n2 = o.layerNorm(mid, w(`${p}.post_attention_layernorm.weight`), w(`${p}.post_attention_layernorm.bias`), v.normEps);
    const f1 = o.gelu(o.linear(n2, w(`${p}.mlp.fc1.weight`), w(`${p}.mlp.fc1.bias`)));
    let ffn = o.linear(f1, w(`${p}.mlp.fc2.weight`), w(`${p}.mlp.fc2.bias`));
    if (gated) ffn = o.op('Mul', [ffn, gate(`${p}.gate_ffn`)]);
    return o.op('Add', [mid, ffn]);
  };

  // Intermediate features are the states entering the selected local layers (see the reference).
  const intermediate = new Map<number, string>();
  for (let l = 0; l < v.numLayers; l++) {
    if (v.intermediateLayersIndices.includes(l)) intermediate.set(l, x);
    x = layer(x, `vision_model.transformer.layers.${l}`, false);
  }
  x = o.layerNorm(x, w('vision_model.layernorm_post.weight'), w('vision_model.layernorm_post.bias'), 1e-5);
  x = o.reshape(o.op('Add', [o.reshape(x, [T, L, h]), tileEmbedding('vision_model.post_tile_positional_embedding')]), [N, h]);
  for (let l = 0; l < v.numGlobalLayers; l++) x = layer(x, `vision_model.global_transformer.layers.${l}`, true);

  const features = [x, ...v.intermediateLayersIndices.map((l) => {
    const state = intermediate.get(l);
    if (!state) throw new InputError(`vision_config.intermediate_layers_indices: ${l} is not below num_hidden_layers ${v.numLayers}`);
    return state;
  })];
  const joined = o.reshape(o.op('Concat', features, { axis: -1 }), [T, L, v.visionOutputDim]);
  // Drop the padding positions, then the projector Linear(vision_output_dim, text hidden, bias).
  const real = o.reshape(o.op('Slice', [joined, o.i64([0]), o.i64([P]), o.i64([1])]), [T * P, v.visionOutputDim]);
  const projected = o.linear(real, w('multi_modal_projector.weight'), w('multi_modal_projector.bias'));
  g.node('Identity', [projected], ['cross_attention_states']);
  g.output('cross_attention_states', 'float32', [T * P, arch.text.hiddenSize]);
  return g.toBytes();
}
