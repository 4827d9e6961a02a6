// The text side of LLaMA 3.2 Vision that the text reference (runners/reference.ts) does not have:
// MllamaCrossAttentionDecoderLayer (transformers modeling_mllama.py), at the indices of
// text_config.cross_attention_layers. It takes the hidden states entering that layer and the
// projected image tokens (mllamaProject) and returns the states leaving it:
//   h = x + tanh(attn_gate) · o(softmax(qnorm(q(rms(x))) · knorm(k(img))ᵀ / √d) v(img))
//   y = h + tanh(mlp_gate) · row_mask · SwiGLU(rms(h))
// No RoPE on either side; GQA as in the self-attention layers; q_norm / k_norm are RMSNorms over
// head_dim. Text rows that may see no image tile (text before the <|image|> token) attend over all
// tiles unmasked, and their MLP branch is zeroed: HF multiplies the additive cross mask by the
// row mask (so such rows lose their -inf entries) and the MLP output by the row mask.
import { linear, rmsNorm, softmax, swiglu } from '../reference-ops.ts';
import { InputError } from '../../results/errors.ts';
import type { TensorGetter } from './mllama-reference.ts';

export interface CrossAttentionArch {
  hiddenSize: number;
  numHeads: number;
  numKvHeads: number;
  intermediateSize: number;
  rmsNormEps: number;
}

/** Which text rows see which image tiles: HF's cross_attention_mask, with `tokensPerTile` tokens per tile. */
export interface CrossAttentionMask {
  tokensPerTile: number;
  tileMask: readonly (readonly number[])[];
}

/**
 * One cross-attention decoder layer. `tokensPerTile` and `tileMask[row][tile]` (1: row may attend to
 * that tile; HF's cross_attention_mask, images' tiles concatenated) select keys; omit `tileMask` to
 * let every row see every tile.
 */
export function mllamaCrossAttentionLayer(
  hidden: readonly Float64Array[],
  imageTokens: readonly Float64Array[],
  get: TensorGetter,
  layer: number,
  a: CrossAttentionArch,
  mask?: CrossAttentionMask,
): Float64Array[] {
  const p = `language_model.model.layers.${layer}`;
  const h = a.hiddenSize;
  const hd = h / a.numHeads;
  const group = a.numHeads / a.numKvHeads;
  if (!Number.isInteger(hd) || !Number.isInteger(group)) throw new InputError(`text_config: hidden_size ${h} / num_attention_heads ${a.numHeads} / num_key_value_heads ${a.numKvHeads} must divide evenly`);
  if (mask && mask.tileMask.length !== hidden.length) throw new InputError(`cross-attention mask: ${mask.tileMask.length} rows for ${hidden.length} text tokens`);
  const qNorm = get(`${p}.cross_attn.q_norm.weight`);
  const kNorm = get(`${p}.cross_attn.k_norm.weight`);
  const normHeads = (vec: Float64Array, heads: number, w: Float32Array) => {
    for (let head = 0; head < heads; head++) vec.set(rmsNorm(vec.subarray(head * hd, (head + 1) * hd), w, a.rmsNormEps), head * hd);
    return vec;
  };
  const kvDim = a.numKvHeads * hd;
  const keys = imageTokens.map((t) => normHeads(linear(get(`${p}.cross_attn.k_proj.weight`), t, kvDim, h), a.numKvHeads, kNorm));
  const values = imageTokens.map((t) => linear(get(`${p}.cross_attn.v_proj.weight`), t, kvDim, h));
  const attnGate = Math.tanh(get(`${p}.cross_attn_attn_gate`)[0]!);
  const mlpGate = Math.tanh(get(`${p}.cross_attn_mlp_gate`)[0]!);
  const scale = 1 / Math.sqrt(hd);

  return hidden.map((x, row) => {
    const visible = (j: number) => (mask ? mask.tileMask[row]![Math.floor(j / mask.tokensPerTile)] === 1 : true);
    let anyVisible = false;
    for (let j = 0; j < imageTokens.length && !anyVisible; j++) anyVisible = visible(j);
    const seen = (j: number) => !anyVisible || visible(j);
    const q = normHeads(linear(get(`${p}.cross_attn.q_proj.weight`), rmsNorm(x, get(`${p}.input_layernorm.weight`), a.rmsNormEps), h, h), a.numHeads, qNorm);
    const attn = new Float64Array(h);
    for (let head = 0; head < a.numHeads; head++) {
      const kvo = Math.floor(head / group) * hd;
      const idx: number[] = [];
      const scores: number[] = [];
      for (let j = 0; j < imageTokens.length; j++) {
        if (!seen(j)) continue;
        let s = 0;
        for (let d = 0; d < hd; d++) s += q[head * hd + d]! * keys[j]![kvo + d]!;
        idx.push(j);
        scores.push(s * scale);
      }
      const w = softmax(scores);
      idx.forEach((j, n) => {
        for (let d = 0; d < hd; d++) attn[head * hd + d] = attn[head * hd + d]! + w[n]! * values[j]![kvo + d]!;
      });
    }
    const o = linear(get(`${p}.cross_attn.o_proj.weight`), attn, h, h);
    const mid = x.map((v, d) => v + attnGate * o[d]!);
    const rowMask = anyVisible ? 1 : 0;
    const normed = rmsNorm(mid, get(`${p}.post_attention_layernorm.weight`), a.rmsNormEps);
    const f = swiglu(normed, get(`${p}.mlp.gate_proj.weight`), get(`${p}.mlp.up_proj.weight`), get(`${p}.mlp.down_proj.weight`), h, a.intermediateSize);
    return mid.map((v, d) => v + mlpGate * rowMask * f[d]!);
  });
}
