// Float64 reference forward of LLaMA 3.2 Vision's image side, read top to bottom like
// transformers' modeling_mllama.py (MllamaVisionModel, MllamaForConditionalGeneration
// .multi_modal_projector, MllamaCrossAttentionDecoderLayer). It is the oracle for any faster
// backend; speed is not a goal. Tensor names are the HF checkpoint's (`vision_model.*`,
// `multi_modal_projector.*`, `language_model.model.layers.N.*`).
//
// Intermediate features: `intermediate_layers_indices` i selects the hidden state *entering*
// local layer i, as Meta's reference (llama-models `VisionEncoder`: `if idx in return_intermediate:
// out.append(x)` before the block runs) and transformers 4.45-4.5x (`encoder_states` gathered before
// each layer) do.
import { linear, softmax } from '../reference-ops.ts';
import { InputError } from '../../results/errors.ts';
import { gelu, layerNorm } from './math.ts';

/** Reads one tensor of the checkpoint by its HF name. */
export type TensorGetter = (name: string) => Float32Array;

/** The MllamaVisionConfig fields the forward reads. */
export interface MllamaVisionArch {
  hiddenSize: number;
  heads: number;
  intermediateSize: number;
  numLayers: number;
  numGlobalLayers: number;
  imageSize: number;
  patchSize: number;
  numChannels: number;
  maxNumTiles: number;
  intermediateLayersIndices: number[];
  normEps: number;
  visionOutputDim: number;
}

export function mllamaVisionArch(vision: Record<string, unknown>): MllamaVisionArch {
  const num = (key: string, fallback?: number): number => {
    const v = vision[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new InputError(`config.json: vision_config.${key} must be a non-negative integer (got ${JSON.stringify(v)})`);
    return v;
  };
  const indices = vision.intermediate_layers_indices;
  if (!Array.isArray(indices) || !indices.every((i) => typeof i === 'number')) throw new InputError('config.json: vision_config.intermediate_layers_indices must be a list of layer indices');
  const arch: MllamaVisionArch = {
    hiddenSize: num('hidden_size'),
    heads: num('attention_heads', typeof vision.num_attention_heads === 'number' ? vision.num_attention_heads : undefined),
    intermediateSize: num('intermediate_size'),
    numLayers: num('num_hidden_layers'),
    numGlobalLayers: num('num_global_layers'),
    imageSize: num('image_size'),
    patchSize: num('patch_size'),
    numChannels: num('num_channels', 3),
    maxNumTiles: num('max_num_tiles'),
    intermediateLayersIndices: indices as number[],
    normEps: typeof vision.norm_eps === 'number' ? vision.norm_eps : 1e-5,
    visionOutputDim: num('vision_output_dim'),
  };
  if (arch.visionOutputDim !== arch.hiddenSize * (1 + indices.length)) {
    throw new InputError(`config.json: vision_config.vision_output_dim ${arch.visionOutputDim} must be hidden_size * (1 + len(intermediate_layers_indices)) = ${arch.hiddenSize * (1 + indices.length)}`);
  }
  return arch;
}

/** Patches per tile, class token included. */
export function patchesPerTile(a: MllamaVisionArch): number {
  return (Math.floor(a.imageSize / a.patchSize)) ** 2 + 1;
}

export interface VisionInput {
  /** (maxNumTiles, channels, imageSize, imageSize), as mllama-preprocess.ts produces it. */
  pixelValues: ArrayLike<number>;
  aspectRatioId: number;
  aspectRatioMask: readonly number[];
}

type Tokens = Float64Array[];

/** Bidirectional multi-head attention; `allowed(q, k)` says whether query q may see key k. */
function selfAttention(x: Tokens, get: TensorGetter, p: string, a: MllamaVisionArch, allowed: (q: number, k: number) => boolean): Tokens {
  const h = a.hiddenSize;
  const hd = h / a.heads;
  const q = x.map((t) => linear(get(`${p}.q_proj.weight`), t, h, h));
  const k = x.map((t) => linear(get(`${p}.k_proj.weight`), t, h, h));
  const v = x.map((t) => linear(get(`${p}.v_proj.weight`), t, h, h));
  const scale = 1 / Math.sqrt(hd);
  return x.map((_, i) => {
    const out = new Float64Array(h);
    for (let head = 0; head < a.heads; head++) {
      const o = head * hd;
      const keys: number[] = [];
      const scores: number[] = [];
      for (let j = 0; j < x.length; j++) {
        if (!allowed(i, j)) continue;
        let s = 0;
        for (let d = 0; d < hd; d++) s += q[i]![o + d]! * k[j]![o + d]!;
        keys.push(j);
        scores.push(s * scale);
      }
      const w = softmax(scores);
      keys.forEach((j, n) => {
        for (let d = 0; d < hd; d++) out[o + d] = out[o + d]! + w[n]! * v[j]![o + d]!;
      });
    }
    return linear(get(`${p}.o_proj.weight`), out, h, h);
  });
}

/** MllamaVisionEncoderLayer: pre-LN attention and GELU MLP; global layers gate both by tanh(gate). */
function encoderLayer(x: Tokens, get: TensorGetter, p: string, a: MllamaVisionArch, gated: boolean, allowed: (q: number, k: number) => boolean): Tokens {
  const h = a.hiddenSize;
  const gateAttn = gated ? Math.tanh(get(`${p}.gate_attn`)[0]!) : 1;
  const gateFfn = gated ? Math.tanh(get(`${p}.gate_ffn`)[0]!) : 1;
  const normed = x.map((t) => layerNorm(t, get(`${p}.input_layernorm.weight`), get(`${p}.input_layernorm.bias`), a.normEps));
  const attn = selfAttention(normed, get, `${p}.self_attn`, a, allowed);
  const mid = x.map((t, i) => t.map((val, d) => val + gateAttn * attn[i]![d]!));
  return mid.map((t) => {
    const n = layerNorm(t, get(`${p}.post_attention_layernorm.weight`), get(`${p}.post_attention_layernorm.bias`), a.normEps);
    const f = linear(get(`${p}.mlp.fc1.weight`), n, a.intermediateSize, h, get(`${p}.mlp.fc1.bias`)).map(gelu);
    const y = linear(get(`${p}.mlp.fc2.weight`), f, h, a.intermediateSize, get(`${p}.mlp.fc2.bias`));
    return t.map((val, d) => val + gateFfn * y[d]!);
  });
}

/** MllamaPrecomputedAspectRatioEmbedding (gated): tile t of every patch gets row[t] * tanh(gate). */
function addTileEmbedding(x: Tokens, get: TensorGetter, p: string, a: MllamaVisionArch, ratioId: number, tokensPerTile: number): void {
  const table = get(`${p}.embedding.weight`);
  const gate = Math.tanh(get(`${p}.gate`)[0]!);
  const h = a.hiddenSize;
  const row = ratioId * a.maxNumTiles * h;
  x.forEach((t, i) => {
    const tile = Math.floor(i / tokensPerTile);
    for (let d = 0; d < h; d++) t[d] = t[d]! + gate * table[row + tile * h + d]!;
  });
}

/**
 * MllamaVisionModel.forward for one image: returns (maxNumTiles * patchesPerTile) tokens of
 * width vision_output_dim (final global-encoder state, then the selected intermediate states).
 */
export function mllamaVisionForward(input: VisionInput, get: TensorGetter, a: MllamaVisionArch): Float64Array[] {
  const h = a.hiddenSize;
  const T = a.maxNumTiles;
  const side = Math.floor(a.imageSize / a.patchSize);
  const P = patchesPerTile(a);
  const ps = a.patchSize;
  const C = a.numChannels;
  if (input.pixelValues.length !== T * C * a.imageSize * a.imageSize) {
    throw new InputError(`pixel values: expected ${T}x${C}x${a.imageSize}x${a.imageSize} values (max_num_tiles x channels x image_size²), got ${input.pixelValues.length}; preprocess with tile size ${a.imageSize}`);
  }
  // The padded length: HF pads every tile's sequence to a multiple of 8. When P is already a
  // multiple of 8, HF's `attention_mask[:, :, -0:] = 0` masks every token; we do not follow that.
  const L = P + ((8 - (P % 8)) % 8);
  if (L === P) throw new InputError(`vision_config: image_size/patch_size gives ${P} tokens per tile, a multiple of 8, for which transformers' aspect-ratio mask is degenerate; not supported`);

  // Patch embedding: Conv2d(kernel = stride = patch, no bias) = one matmul per patch, flattened (c, y, x).
  const convW = get('vision_model.patch_embedding.weight');
  const patches: Tokens = [];
  for (let t = 0; t < T; t++) {
    for (let py = 0; py < side; py++) {
      for (let px = 0; px < side; px++) {
        const flat = new Float64Array(C * ps * ps);
        for (let c = 0; c < C; c++) for (let y = 0; y < ps; y++) for (let x = 0; x < ps; x++) {
          flat[(c * ps + y) * ps + x] = input.pixelValues[((t * C + c) * a.imageSize + py * ps + y) * a.imageSize + px * ps + x]!;
        }
        patches.push(linear(convW, flat, h, C * ps * ps));
      }
    }
  }
  addTileEmbedding(patches, get, 'vision_model.pre_tile_positional_embedding', a, input.aspectRatioId, side * side);

  // Class token first in each tile, then the gated position embeddings.
  const cls = get('vision_model.class_embedding');
  const posGate = Math.tanh(get('vision_model.gated_positional_embedding.gate')[0]!);
  const pos = get('vision_model.gated_positional_embedding.embedding');
  const tilePos = get('vision_model.gated_positional_embedding.tile_embedding.weight');
  const tilePosRow = input.aspectRatioId * T * P * h;
  let x: Tokens = [];
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < P; i++) {
      const tok = i === 0 ? Float64Array.from(cls) : patches[t * side * side + i - 1]!;
      for (let d = 0; d < h; d++) tok[d] = tok[d]! + (1 - posGate) * pos[i * h + d]! + posGate * tilePos[tilePosRow + (t * P + i) * h + d]!;
      x.push(layerNorm(tok, get('vision_model.layernorm_pre.weight'), get('vision_model.layernorm_pre.bias'), 1e-5));
    }
    for (let i = P; i < L; i++) x.push(new Float64Array(h)); // zero padding after layernorm_pre
  }

  // _prepare_aspect_ratio_attention_mask: a token is "masked" when its tile is padding or it is a
  // padding position; a pair is blocked only when both are masked (so real tokens see everything).
  const masked = (i: number) => input.aspectRatioMask[Math.floor(i / L)] !== 1 || i % L >= P;
  const allowed = (q: number, k: number) => !(masked(q) && masked(k));

  const intermediate = new Map<number, Tokens>();
  for (let l = 0; l < a.numLayers; l++) {
    if (a.intermediateLayersIndices.includes(l)) intermediate.set(l, x);
    x = encoderLayer(x, get, `vision_model.transformer.layers.${l}`, a, false, allowed);
  }
  x = x.map((t) => layerNorm(t, get('vision_model.layernorm_post.weight'), get('vision_model.layernorm_post.bias'), 1e-5));
  addTileEmbedding(x, get, 'vision_model.post_tile_positional_embedding', a, input.aspectRatioId, L);
  for (let l = 0; l < a.numGlobalLayers; l++) x = encoderLayer(x, get, `vision_model.global_transformer.layers.${l}`, a, true, allowed);

  const out: Float64Array[] = [];
  for (let i = 0; i < x.length; i++) {
    if (i % L >= P) continue; // drop the padding positions
    const row = new Float64Array(a.visionOutputDim);
    row.set(x[i]!, 0);
    a.intermediateLayersIndices.forEach((layer, n) => {
      const state = intermediate.get(layer);
      if (!state) throw new InputError(`vision_config.intermediate_layers_indices: ${layer} is not below num_hidden_layers ${a.numLayers}`);
      row.set(state[i]!, (n + 1) * h);
    });
    out.push(row);
  }
  return out;
}

/** multi_modal_projector: Linear(vision_output_dim, text hidden, bias) -> cross_attention_states. */
export function mllamaProject(visionOut: Float64Array[], get: TensorGetter, visionOutputDim: number, textHidden: number): Float64Array[] {
  return visionOut.map((t) => linear(get('multi_modal_projector.weight'), t, textHidden, visionOutputDim, get('multi_modal_projector.bias')));
}
