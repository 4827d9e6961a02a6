// The ONNX graph of LLaMA 4's image side: Llama4VisionModel (unfold patch embedding, class token
// appended last, positional_embedding_vlm, layernorm_pre, encoder layers with the 2D vision RoPE,
// layernorm_post, class token dropped, pixel shuffle, vision_adapter) + multi_modal_projector, in
// plain ONNX ops, fp32, with the math of the float64 reference (runners/vision/llama4-reference.ts),
// its oracle (test/parity/ort-llama4-vision.test.ts). All tiles of one image per run:
//   pixel_values [num_tiles, channels, image_size, image_size] float32
//   ->  image_features [num_tiles * tokens_per_tile, text hidden_size]
// (tiles in order, the global tile last: the order of the `<|patch|>` tokens).
import type { ModelArch } from '../arch.ts';
import { InputError } from '../../results/errors.ts';
import { llama4VisionTensorSpecs } from '../tiny-vision.ts';
import type { TensorGetter } from '../vision/mllama-reference.ts';
import { llama4TokensPerTile, llama4VisionArch, visionRopeAngles } from '../vision/llama4-reference.ts';
import { GraphOps } from './llama-ops.ts';
import { OnnxGraphBuilder } from './onnx-builder.ts';

export const PIXEL_VALUES_INPUT = 'pixel_values';
export const IMAGE_FEATURES_OUTPUT = 'image_features';

/** Serialized ModelProto of the vision tower + adapter + projector of a Llama 4 vision checkpoint. */
export function buildLlama4VisionGraph(arch: ModelArch, get: TensorGetter): Uint8Array {
  if (arch.modelType !== 'llama4' || !arch.vision) throw new InputError('llama4 vision graph: the checkpoint is not a Llama4ForConditionalGeneration (model_type llama4 with vision_config)');
  const a = llama4VisionArch(arch.vision);
  const h = a.hiddenSize;
  const C = a.numChannels;
  const S = a.imageSize;
  const ps = a.patchSize;
  const side = S / ps;
  const P = side * side; // patches per tile
  const N = P + 1; // + the class token
  const heads = a.heads;
  const hd = h / heads;
  const s = Math.round(1 / a.pixelShuffleRatio);
  const outSide = side / s;

  const g = new OnnxGraphBuilder('llama4_vision');
  const o = new GraphOps(g);
  const shapes = new Map(llama4VisionTensorSpecs(arch).map((spec) => [spec.name, spec.shape]));
  const w = (name: string, as?: readonly number[]): string => {
    const shape = shapes.get(name);
    if (!shape) throw new Error(`llama4 vision graph: no spec for tensor ${name}`);
    const data = get(name);
    if (data.length !== shape.reduce((x, y) => x * y, 1)) throw new InputError(`tensor ${name}: ${data.length} values, expected shape [${shape.join(', ')}] from config.json`);
    return g.initializer(name, data, as ?? shape);
  };

  g.input(PIXEL_VALUES_INPUT, 'float32', ['num_tiles', C, S, S]);
  // Llama4UnfoldConvolution is nn.Unfold (patch flattened as c, y, x) + Linear without bias: the
  // same numbers as a Conv2d with kernel = stride = patch whose weight is the Linear's, viewed [h, C, ps, ps].
  const conv = o.op('Conv', [PIXEL_VALUES_INPUT, w('vision_model.patch_embedding.linear.weight', [h, C, ps, ps])], { kernel_shape: [ps, ps], strides: [ps, ps] });
  const patches = o.transpose(o.reshape(conv, [-1, h, P]), [0, 2, 1]); // [T, P, h], row-major patches
  const tiles = o.op('Shape', [PIXEL_VALUES_INPUT], { end: 1 }); // [T]
  const cls = o.op('Expand', [o.reshape(w('vision_model.class_embedding'), [1, 1, h]), o.op('Concat', [tiles, o.i64([1, h])], { axis: 0 })]);
  let x = o.op('Add', [o.op('Concat', [patches, cls], { axis: 1 }), w('vision_model.positional_embedding_vlm')]); // [T, N, h]
  x = o.reshape(o.layerNorm(x, w('vision_model.layernorm_pre.weight'), w('vision_model.layernorm_pre.bias'), 1e-5), [-1, h]); // [T*N, h]

  // 2D RoPE tables per token and complex pair: [N, 1, hd/2, 1] against q viewed [T, N, heads, hd/2, 2].
  const angles = visionRopeAngles(a);
  const table = (fn: (v: number) => number, name: string) =>
    g.initializer(name, Float32Array.from(angles.flatMap((row) => Array.from(row, fn))), [N, 1, hd / 2, 1]);
  const cos = table(Math.cos, 'vision_rope_cos');
  const sin = table(Math.sin, 'vision_rope_sin');
  const rotate = (y: string): string => {
    const [re, im] = o.split(o.reshape(y, [-1, N, heads, hd / 2, 2]), [1, 1], 4);
    const outRe = o.op('Sub', [o.op('Mul', [re!, cos]), o.op('Mul', [im!, sin])]);
    const outIm = o.op('Add', [o.op('Mul', [re!, sin]), o.op('Mul', [im!, cos])]);
    return o.op('Concat', [outRe, outIm], { axis: 4 });
  };

  // Llama4VisionEncoderLayer: pre-LN bidirectional attention (no mask) with 2D RoPE on q and k,
  // pre-LN GELU MLP; every linear biased.
  const layer = (input: string, p: string): string => {
    const normed = o.layerNorm(input, w(`${p}.input_layernorm.weight`), w(`${p}.input_layernorm.bias`), 1e-5);
    const proj = (name: string) => o.linear(normed, w(`${p}.self_attn.${name}.weight`), w(`${p}.self_attn.${name}.bias`));
    const q = o.transpose(o.reshape(rotate(proj('q_proj')), [-1, N, heads, hd]), [0, 2, 1, 3]); // [T, heads, N, hd]
    const kT = o.transpose(o.reshape(rotate(proj('k_proj')), [-1, N, heads, hd]), [0, 2, 3, 1]); // [T, heads, hd, N]
    const v = o.transpose(o.reshape(proj('v_proj'), [-1, N, heads, hd]), [0, 2, 1, 3]);
    const scores = o.op('Mul', [o.op('MatMul', [q, kT]), o.f32(1 / Math.sqrt(hd))]);
    const ctx = o.op('MatMul', [o.op('Softmax', [scores], { axis: -1 }), v]); // [T, heads, N, hd]
    const attn = o.linear(o.reshape(o.transpose(ctx, [0, 2, 1, 3]), [-1, h]), w(`${p}.self_attn.o_proj.weight`), w(`${p}.self_attn.o_proj.bias`));
    const mid = o.op('Add', [input, attn]);
    const n2 = o.layerNorm(mid, w(`${p}.post_attention_layernorm.weight`), w(`${p}.post_attention_layernorm.bias`), 1e-5);
    const f = o.gelu(o.linear(n2, w(`${p}.mlp.fc1.weight`), w(`${p}.mlp.fc1.bias`)));
    return o.op('Add', [mid, o.linear(f, w(`${p}.mlp.fc2.weight`), w(`${p}.mlp.fc2.bias`))]);
  };
  for (let l = 0; l < a.numLayers; l++) x = layer(x, `vision_model.model.layers.${l}`);
  x = o.layerNorm(x, w('vision_model.layernorm_post.weight'), w('vision_model.layernorm_post.bias'), 1e-5);

  // Drop the class token (last), then pixel_shuffle: output token (i, j) concatenates patches
  // (i*s + b, j*s + c) over b, c, b major (see pixelShuffle in the reference).
  const grid = o.op('Slice', [o.reshape(x, [-1, N, h]), o.i64([0]), o.i64([P]), o.i64([1])]); // [T, P, h]
  const shuffled = o.reshape(o.transpose(o.reshape(grid, [-1, outSide, s, outSide, s, h]), [0, 1, 3, 2, 4, 5]), [-1, s * s * h]);
  // Llama4VisionMLP2: GELU after fc1 and after fc2, no biases; then the projector (no bias).
  const adapted = o.gelu(o.linear(o.gelu(o.linear(shuffled, w('vision_model.vision_adapter.mlp.fc1.weight'), null)), w('vision_model.vision_adapter.mlp.fc2.weight'), null));
  const projected = o.linear(adapted, w('multi_modal_projector.linear_1.weight'), null);
  g.node('Identity', [projected], [IMAGE_FEATURES_OUTPUT]);
  g.output(IMAGE_FEATURES_OUTPUT, 'float32', ['image_tokens', arch.text.hiddenSize]);
  if (llama4TokensPerTile(a) !== outSide * outSide) throw new Error('llama4 vision graph: tokens per tile disagree with the reference');
  return g.toBytes();
}
