// Float64 reference forward of LLaMA 4's image side, read top to bottom like transformers'
// modeling_llama4.py: Llama4VisionModel (Llama4UnfoldConvolution patch embedding, class embedding
// appended LAST, positional_embedding_vlm, layernorm_pre, Llama4VisionEncoder layers with the 2D
// vision RoPE of Llama4VisionRotaryEmbedding, layernorm_post, class token dropped,
// Llama4VisionPixelShuffleMLP = pixel_shuffle + Llama4VisionMLP2) and Llama4MultiModalProjector.
// Tensor names are the HF checkpoint's (`vision_model.*`, `multi_modal_projector.linear_1.weight`).
// It is the oracle for any faster backend; speed is not a goal.
import { linear, softmax } from '../reference-ops.ts';
import { InputError } from '../../results/errors.ts';
import type { TensorGetter } from './mllama-reference.ts';
import { gelu, layerNorm } from './math.ts';

/** The Llama4VisionConfig fields the forward reads. */
export interface Llama4VisionArch {
  hiddenSize: number;
  heads: number;
  intermediateSize: number;
  numLayers: number;
  imageSize: number;
  patchSize: number;
  numChannels: number;
  ropeTheta: number;
  pixelShuffleRatio: number;
  projectorInputDim: number;
  projectorOutputDim: number;
  visionOutputDim: number;
}

/** Parses `vision_config` of a Llama4Config; a bad field is an InputError naming it. */
export function llama4VisionArch(vision: Record<string, unknown>): Llama4VisionArch {
  const num = (key: string, fallback?: number): number => {
    const v = vision[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new InputError(`config.json: vision_config.${key} must be a positive integer (got ${JSON.stringify(v)})`);
    return v;
  };
  const ratio = vision.pixel_shuffle_ratio ?? 0.5;
  if (typeof ratio !== 'number' || !(ratio > 0 && ratio <= 1) || !Number.isInteger(1 / ratio)) {
    throw new InputError(`config.json: vision_config.pixel_shuffle_ratio must be 1/k for an integer k (got ${JSON.stringify(ratio)})`);
  }
  const a: Llama4VisionArch = {
    hiddenSize: num('hidden_size'),
    heads: num('num_attention_heads'),
    intermediateSize: num('intermediate_size'),
    numLayers: num('num_hidden_layers'),
    imageSize: num('image_size'),
    patchSize: num('patch_size'),
    numChannels: num('num_channels', 3),
    ropeTheta: typeof vision.rope_theta === 'number' ? vision.rope_theta : 10000,
    pixelShuffleRatio: ratio,
    projectorInputDim: num('projector_input_dim'),
    projectorOutputDim: num('projector_output_dim'),
    visionOutputDim: num('vision_output_dim'),
  };
  const side = a.imageSize / a.patchSize;
  const s = 1 / ratio;
  if (!Number.isInteger(side) || side % s !== 0) throw new InputError(`config.json: vision_config.image_size / patch_size = ${side} must be an integer multiple of 1 / pixel_shuffle_ratio = ${s}`);
  if (a.hiddenSize % a.heads !== 0 || (a.hiddenSize / a.heads) % 4 !== 0) throw new InputError(`config.json: vision_config.hidden_size / num_attention_heads must be a multiple of 4 (the 2D RoPE splits each head in x and y halves of complex pairs)`);
  // Llama4VisionMLP2.fc1 takes `intermediate_size` inputs: the pixel-shuffled width hidden / ratio².
  if (a.intermediateSize !== a.hiddenSize * s * s) throw new InputError(`config.json: vision_config.intermediate_size ${a.intermediateSize} must be hidden_size / pixel_shuffle_ratio² = ${a.hiddenSize * s * s} (the adapter's fc1 reads the pixel-shuffled patches)`);
  if (a.visionOutputDim !== a.projectorOutputDim) throw new InputError(`config.json: vision_config.vision_output_dim ${a.visionOutputDim} must equal projector_output_dim ${a.projectorOutputDim} (the projector reads the adapter's output)`);
  return a;
}

/** Image tokens per tile after the pixel shuffle (Llama4Processor `num_patches_per_chunk`). */
export function llama4TokensPerTile(a: Llama4VisionArch): number {
  return (a.imageSize / a.patchSize) ** 2 * a.pixelShuffleRatio ** 2;
}

/**
 * Llama4VisionRotaryEmbedding: the rotation angle of each complex pair (head_dim / 2 of them) of
 * each token (patches row-major, then the class token). The first half of the pairs turns with the
 * patch's column + 1, the second half with its row + 1, at frequencies 1 / theta^(2k / (head_dim/2));
 * the class token (ID_CLS_TOKEN = -2) is not rotated.
 */
export function visionRopeAngles(a: Llama4VisionArch): Float64Array[] {
  const side = a.imageSize / a.patchSize;
  const freqDim = a.hiddenSize / a.heads / 2;
  const freqs = Array.from({ length: freqDim / 2 }, (_, k) => 1 / a.ropeTheta ** ((2 * k) / freqDim));
  const out: Float64Array[] = [];
  for (let i = 0; i <= side * side; i++) {
    const angles = new Float64Array(freqDim);
    if (i < side * side) {
      // `repeat_interleave(2)` then `[..., ::2]` keeps each frequency once: x block, then y block.
      freqs.forEach((f, k) => {
        angles[k] = ((i % side) + 1) * f;
        angles[freqs.length + k] = (Math.floor(i / side) + 1) * f;
      });
    }
    out.push(angles);
  }
  return out;
}

/** vision_apply_rotary_emb: consecutive (re, im) pairs of each head times e^{i angle}. */
function rotatePairs(v: Float64Array, heads: number, headDim: number, angles: Float64Array): void {
  for (let h = 0; h < heads; h++) {
    for (let p = 0; p < headDim / 2; p++) {
      const i = h * headDim + 2 * p;
      const c = Math.cos(angles[p]!);
      const s = Math.sin(angles[p]!);
      const re = v[i]!;
      const im = v[i + 1]!;
      v[i] = re * c - im * s;
      v[i + 1] = re * s + im * c;
    }
  }
}

type Tokens = Float64Array[];

/** Llama4VisionEncoderLayer: pre-LN bidirectional attention with 2D RoPE, pre-LN GELU MLP. */
function encoderLayer(x: Tokens, get: TensorGetter, p: string, a: Llama4VisionArch, rope: readonly Float64Array[]): Tokens {
  const h = a.hiddenSize;
  const hd = h / a.heads;
  const normed = x.map((t) => layerNorm(t, get(`${p}.input_layernorm.weight`), get(`${p}.input_layernorm.bias`), 1e-5));
  const proj = (name: string, t: Float64Array) => linear(get(`${p}.self_attn.${name}.weight`), t, h, h, get(`${p}.self_attn.${name}.bias`));
  const q = normed.map((t, i) => {
    const y = proj('q_proj', t);
    rotatePairs(y, a.heads, hd, rope[i]!);
    return y;
  });
  const k = normed.map((t, i) => {
    const y = proj('k_proj', t);
    rotatePairs(y, a.heads, hd, rope[i]!);
    return y;
  });
  const v = normed.map((t) => proj('v_proj', t));
  // vision_eager_attention_forward: scale head_dim^-0.5, no mask (is_causal=False).
  const scale = 1 / Math.sqrt(hd);
  const attn = x.map((_, i) => {
    const out = new Float64Array(h);
    for (let head = 0; head < a.heads; head++) {
      const o = head * hd;
      const scores = k.map((kj) => {
        let s = 0;
        for (let d = 0; d < hd; d++) s += q[i]![o + d]! * kj[o + d]!;
        return s * scale;
      });
      const w = softmax(scores);
      v.forEach((vj, j) => {
        for (let d = 0; d < hd; d++) out[o + d] = out[o + d]! + w[j]! * vj[o + d]!;
      });
    }
    return linear(get(`${p}.self_attn.o_proj.weight`), out, h, h, get(`${p}.self_attn.o_proj.bias`));
  });
  return x.map((t, i) => {
    const mid = t.map((val, d) => val + attn[i]![d]!);
    const n = layerNorm(mid, get(`${p}.post_attention_layernorm.weight`), get(`${p}.post_attention_layernorm.bias`), 1e-5);
    const f = linear(get(`${p}.mlp.fc1.weight`), n, a.intermediateSize, h, get(`${p}.mlp.fc1.bias`)).map(gelu);
    const y = linear(get(`${p}.mlp.fc2.weight`), f, h, a.intermediateSize, get(`${p}.mlp.fc2.bias`));
    return mid.map((val, d) => val + y[d]!);
  });
}

/**
 * pixel_shuffle(input, ratio) for a square side x side grid of C-wide patches: output token
 * (i, j) of the (side * ratio)² grid, row-major, is the concatenation over b, a in [0, 1/ratio) of
 * patch (i / ratio + b, j / ratio + a), b major — what HF's view/permute/view/permute sequence does
 * (derived in docs/multimodal.md).
 */
export function pixelShuffle(patches: readonly Float64Array[], ratio: number): Float64Array[] {
  const side = Math.round(Math.sqrt(patches.length));
  const s = Math.round(1 / ratio);
  const C = patches[0]!.length;
  const outSide = side / s;
  const out: Float64Array[] = [];
  for (let i = 0; i < outSide; i++) {
    for (let j = 0; j < outSide; j++) {
      const t = new Float64Array(C * s * s);
      for (let b = 0; b < s; b++) for (let c = 0; c < s; c++) t.set(patches[(i * s + b) * side + (j * s + c)]!, (b * s + c) * C);
      out.push(t);
    }
  }
  return out;
}

/**
 * Llama4VisionModel.forward for one tile (channels, imageSize, imageSize): returns the adapter's
 * output, llama4TokensPerTile tokens of width projector_output_dim.
 */
export function llama4VisionTile(pixels: ArrayLike<number>, offset: number, get: TensorGetter, a: Llama4VisionArch): Tokens {
  const h = a.hiddenSize;
  const S = a.imageSize;
  const ps = a.patchSize;
  const C = a.numChannels;
  const side = S / ps;
  // Llama4UnfoldConvolution: nn.Unfold flattens each patch as (c, y, x) and walks patches row-major.
  const linW = get('vision_model.patch_embedding.linear.weight');
  let x: Tokens = [];
  for (let py = 0; py < side; py++) {
    for (let px = 0; px < side; px++) {
      const flat = new Float64Array(C * ps * ps);
      for (let c = 0; c < C; c++) for (let y = 0; y < ps; y++) for (let xx = 0; xx < ps; xx++) {
        flat[(c * ps + y) * ps + xx] = pixels[offset + (c * S + py * ps + y) * S + px * ps + xx]!;
      }
      x.push(linear(linW, flat, h, C * ps * ps));
    }
  }
  x.push(Float64Array.from(get('vision_model.class_embedding'))); // appended after the patches
  const pos = get('vision_model.positional_embedding_vlm');
  x = x.map((t, i) => layerNorm(t.map((val, d) => val + pos[i * h + d]!), get('vision_model.layernorm_pre.weight'), get('vision_model.layernorm_pre.bias'), 1e-5));
  const rope = visionRopeAngles(a);
  for (let l = 0; l < a.numLayers; l++) x = encoderLayer(x, get, `vision_model.model.layers.${l}`, a, rope);
  x = x.map((t) => layerNorm(t, get('vision_model.layernorm_post.weight'), get('vision_model.layernorm_post.bias'), 1e-5));
  // `hidden_state[:, :-1, :]`: the class token is dropped before the adapter.
  const shuffled = pixelShuffle(x.slice(0, -1), a.pixelShuffleRatio);
  // Llama4VisionMLP2: GELU after fc1 AND after fc2, both without bias.
  return shuffled.map((t) => {
    const f = linear(get('vision_model.vision_adapter.mlp.fc1.weight'), t, a.projectorInputDim, a.intermediateSize).map(gelu);
    return linear(get('vision_model.vision_adapter.mlp.fc2.weight'), f, a.projectorOutputDim, a.projectorOutputDim).map(gelu);
  });
}

/**
 * Llama4ForConditionalGeneration.get_image_features + multi_modal_projector for an image's tiles:
 * (numTiles * tokens per tile) embeddings of the text width, tiles in order, which replace the
 * <|patch|> embeddings in order (`masked_scatter`).
 */
export function llama4ImageEmbeddings(pixelValues: ArrayLike<number>, numTiles: number, get: TensorGetter, a: Llama4VisionArch, textHidden: number): Float64Array[] {
  const tileLen = a.numChannels * a.imageSize * a.imageSize;
  if (pixelValues.length !== numTiles * tileLen) {
    throw new InputError(`pixel values: expected ${numTiles}x${a.numChannels}x${a.imageSize}x${a.imageSize} values, got ${pixelValues.length}; preprocess with tile size ${a.imageSize}`);
  }
  const out: Float64Array[] = [];
  for (let t = 0; t < numTiles; t++) {
    for (const feature of llama4VisionTile(pixelValues, t * tileLen, get, a)) {
      out.push(linear(get('multi_modal_projector.linear_1.weight'), feature, textHidden, a.visionOutputDim));
    }
  }
  return out;
}
