// LLaMA-Adapter V2's visual path on the float64 reference, as the official
// llama_adapter_v2_multimodal7b/llama/llama_adapter.py `forward_visual` computes it:
//   f = clip_proj_norm(clip_proj(features))                     features: [tokens, featureDim]
//   x = [visual_query.weight; f]
//   x = visual_blocks(x)     timm 0.3.2 Block: x += proj(attn(norm1(x))); x += fc2(gelu(fc1(norm2(x))))
//   q = visual_proj_norm(visual_proj(x[:query_len]))            [query_len, hidden]
// and `forward`: each adapted layer's prompt is `adapter_query[layer] + q`. LayerNorms are torch's
// nn.LayerNorm (eps 1e-5: timm 0.3.2 Block's `norm_layer=nn.LayerNorm`, and the modules above);
// attention is timm's: qkv laid out [q | k | v], each head a contiguous slice, scale head_dim^-0.5, no mask.
// The features are the base's own (runners/peft/spec/visual.ts): mllama's projector output over the real tiles.
import { visualParameterShapes, type VisualDims } from './spec/index.ts';
import { InputError } from '../../results/errors.ts';
import { linear, softmax } from '../reference-ops.ts';
import type { ReferenceModel } from '../reference-weights.ts';
import { seededNormal } from '../tiny.ts';
import { gelu, layerNorm } from '../vision/math.ts';
import type { AdaptionPrompt, VisualAdapter } from './branch.ts';
import type { AdapterTensors, NamedTensor } from './lora.ts';
import { streamSeed } from './seed.ts';

const LN_EPS = 1e-5;

/** Random visual-path weights (official names): Linear / Embedding N(0, 0.02) / N(0, 1), norms 1 + N(0, 0.1), biases N(0, 0.02). */
export function randomVisualTensors(dims: VisualDims, featureDim: number, hidden: number, queryLen: number, seed: number): NamedTensor[] {
  return visualParameterShapes(dims, featureDim, hidden, queryLen).map(([name, shape]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const noise = (std: number) => seededNormal(streamSeed(seed, name), n, std);
    const isNorm = /norm\d?\.weight$/.test(name);
    const data = name === 'visual_query.weight' ? noise(1) : isNorm ? noise(0.1).map((x) => 1 + x) : noise(name.endsWith('.bias') ? 0.02 : 0.2 / Math.sqrt(shape[1] ?? 1));
    return { name, shape, data };
  });
}

/** Reads the visual path from `tensors` (official names), checking each shape. */
export function readVisualAdapter(tensors: AdapterTensors, dims: VisualDims, model: ReferenceModel, queryLen: number, layers: readonly number[], expected: Set<string>): VisualAdapter {
  if (!model.crossAttention) {
    throw new InputError(`${tensors.path}: LLaMA-Adapter V2's visual path reads the base's image features, but this model has no vision tower (model_type ${model.arch.modelType}); use an mllama (LLaMA 3.2 Vision) model or drop the visual path`);
  }
  const h = model.text.hiddenSize;
  const weights = new Map<string, Float32Array>();
  for (const [name, shape] of visualParameterShapes(dims, h, h, queryLen)) {
    const info = tensors.info(name);
    if (!info) throw new InputError(`${tensors.path}: missing visual-path tensor "${name}" (expected [${shape.join(', ')}])`);
    if (info.shape.join(',') !== shape.join(',')) {
      throw new InputError(`${tensors.path}: visual-path tensor "${name}" has shape [${info.shape.join(', ')}], expected [${shape.join(', ')}] (image features are the base's projector output, ${h} wide)`);
    }
    expected.add(name);
    weights.set(name, tensors.readFloat32(name));
  }
  return { dims, featureDim: h, queryLen, weights, layers };
}

/** timm Block over all rows (no mask). */
function block(x: Float64Array[], w: (name: string) => Float32Array, p: string, dims: VisualDims): Float64Array[] {
  const v = dims.dim;
  const hd = v / dims.heads;
  const scale = hd ** -0.5;
  const qkv = x.map((t) => linear(w(`${p}.attn.qkv.weight`), layerNorm(t, w(`${p}.norm1.weight`), w(`${p}.norm1.bias`), LN_EPS), 3 * v, v, w(`${p}.attn.qkv.bias`)));
  const mid = x.map((t, i) => {
    const heads = new Float64Array(v);
    for (let head = 0; head < dims.heads; head++) {
      const o = head * hd;
      const scores = qkv.map((k) => {
        let s = 0;
        for (let d = 0; d < hd; d++) s += qkv[i]![o + d]! * k[v + o + d]!;
        return s * scale;
      });
      const pr = softmax(scores);
      qkv.forEach((val, j) => {
        for (let d = 0; d < hd; d++) heads[o + d] = heads[o + d]! + pr[j]! * val[2 * v + o + d]!;
      });
    }
    const a = linear(w(`${p}.attn.proj.weight`), heads, v, v, w(`${p}.attn.proj.bias`));
    return t.map((val, d) => val + a[d]!);
  });
  return mid.map((t) => {
    const f = linear(w(`${p}.mlp.fc1.weight`), layerNorm(t, w(`${p}.norm2.weight`), w(`${p}.norm2.bias`), LN_EPS), dims.mlpHidden, v, w(`${p}.mlp.fc1.bias`)).map(gelu);
    const y = linear(w(`${p}.mlp.fc2.weight`), f, v, dims.mlpHidden, w(`${p}.mlp.fc2.bias`));
    return t.map((val, d) => val + y[d]!);
  });
}

/** `forward_visual`: image features [tokens][featureDim] -> the visual query [query_len][hidden]. */
export function forwardVisual(adapter: VisualAdapter, features: readonly ArrayLike<number>[], hidden: number): Float64Array[] {
  const { dims, queryLen, featureDim } = adapter;
  const w = (name: string): Float32Array => adapter.weights.get(name)!;
  const v = dims.dim;
  const clip = features.map((f) => layerNorm(linear(w('clip_proj.weight'), f, v, featureDim, w('clip_proj.bias')), w('clip_proj_norm.weight'), w('clip_proj_norm.bias'), LN_EPS));
  const query = w('visual_query.weight');
  let x: Float64Array[] = [...Array.from({ length: queryLen }, (_, i) => Float64Array.from(query.subarray(i * v, (i + 1) * v))), ...clip];
  for (let i = 0; i < dims.depth; i++) x = block(x, w, `visual_blocks.${i}`, dims);
  return x.slice(0, queryLen).map((t) => layerNorm(linear(w('visual_proj.weight'), t, hidden, v, w('visual_proj.bias')), w('visual_proj_norm.weight'), w('visual_proj_norm.bias'), LN_EPS));
}

/**
 * The model for one image: each adapted layer's prompt becomes adapter_query + visual query, rounded to
 * float32 (the prompts are float32 tensors, as the graph backends feed them). Without a visual path,
 * `model` itself.
 */
export function withVisualQuery(model: ReferenceModel, features: readonly ArrayLike<number>[]): ReferenceModel {
  const peft = model.peft;
  const adapter = peft?.visual;
  if (!peft || !adapter) return model;
  const h = model.text.hiddenSize;
  const vq = forwardVisual(adapter, features, h);
  const prompts = new Map(peft.adaptionPrompts);
  for (const layer of adapter.layers) {
    const p = prompts.get(layer)!;
    const prompt = Float32Array.from(p.prompt, (x, i) => x + vq[Math.floor(i / h)]![i % h]!);
    prompts.set(layer, { ...p, prompt } satisfies AdaptionPrompt);
  }
  return { ...model, peft: { ...peft, adaptionPrompts: prompts } };
}
