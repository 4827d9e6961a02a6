// The oracle: a float64 forward pass of a LLaMA-family text model in plain TypeScript, written to be
// read top to bottom next to the papers (LLaMA, Touvron et al. 2023: pre-norm RMSNorm, SwiGLU,
// RoPE; LLaMA 2: grouped-query attention; LLaMA 3: 128K vocab, rope theta 500k, `llama3` RoPE
// scaling; LLaMA 4: MoE, NoPE layers, chunked attention, QK-norm, attention temperature tuning)
// and the behaviour of transformers' modeling_llama.py / modeling_llama4.py. No caching, no
// batching, no cleverness: every ORT graph is tested against this.
import { addInto, dot, linear, logSoftmax, rmsNorm, sigmoid, silu, softmax, swiglu } from './reference-ops.ts';
import { ropeInvFreq, rotateHalf, rotateInterleaved } from './reference-rope.ts';
import type { DenseMlpWeights, LayerWeights, MoeWeights, ReferenceModel } from './reference-weights.ts';
import type { TextArch } from '../harness/arch.ts';

export type { ReferenceModel } from './reference-weights.ts';

/** Whether layer `layer` applies RoPE (Llama 4 NoPE layers do not). */
export function layerUsesRope(text: TextArch, layer: number): boolean {
  return !text.noRopeLayers.includes(layer);
}

/**
 * Whether query position `q` may attend to key position `k` in layer `layer`. Causal everywhere;
 * Llama 4 RoPE layers ("chunked_attention" in Llama4TextConfig.layer_types) additionally see only
 * their own chunk of `attention_chunk_size` positions (transformers `create_chunked_causal_mask`:
 * k // chunk == q // chunk); its NoPE layers attend globally.
 */
export function canAttend(text: TextArch, layer: number, q: number, k: number): boolean {
  if (k > q) return false;
  const chunk = text.attentionChunkSize;
  if (chunk !== null && layerUsesRope(text, layer)) return Math.floor(k / chunk) === Math.floor(q / chunk);
  return true;
}

/**
 * Llama 4 attention temperature tuning (Llama4TextAttention, NoPE layers only): queries at position
 * p are scaled by log(floor((p + 1) / floor_scale) + 1) * attn_scale + 1, which sharpens attention
 * over long contexts.
 */
export function attentionTemperature(pos: number, floorScale: number, attnScale: number): number {
  return Math.log1p(Math.floor((pos + 1) / floorScale)) * attnScale + 1;
}

function denseMlp(x: Float64Array, w: DenseMlpWeights, hidden: number): Float64Array {
  return swiglu(x, w.gate, w.up, w.down, hidden, w.inter, { gate: w.gateBias, up: w.upBias, down: w.downBias });
}

export interface Routing {
  experts: number[];
  /** sigmoid(router logit) of each chosen expert. */
  scores: number[];
}

/**
 * Llama4Router: router logits = W_router x; the top-k experts by logit are chosen and weighted by
 * sigmoid(logit) (not a softmax: the others get sigmoid(-inf) = 0). Ties go to the lower index.
 */
export function routeToken(router: ArrayLike<number>, x: ArrayLike<number>, numExperts: number, hidden: number, topK: number): Routing {
  const logits = linear(router, x, numExperts, hidden);
  const order = Array.from({ length: numExperts }, (_, e) => e).sort((a, b) => logits[b]! - logits[a]! || a - b);
  const experts = order.slice(0, topK);
  return { experts, scores: experts.map((e) => sigmoid(logits[e]!)) };
}

/**
 * Llama4TextMoe: the shared expert sees x; each routed expert sees x scaled by its router score
 * (the score multiplies the expert's input, not its output), and their outputs are summed.
 */
export function moeForward(x: Float64Array, w: MoeWeights, text: TextArch): { out: Float64Array; routing: Routing } {
  const moe = text.moe!;
  const h = text.hiddenSize;
  const inter = moe.expertIntermediateSize;
  const routing = routeToken(w.router, x, moe.numExperts, h, moe.topK);
  const out = denseMlp(x, w.shared, h);
  routing.experts.forEach((e, r) => {
    const score = routing.scores[r]!;
    const gateUp = new Float64Array(2 * inter);
    const base = e * h * 2 * inter;
    for (let i = 0; i < h; i++) {
      const xi = x[i]! * score;
      const row = base + i * 2 * inter;
      for (let j = 0; j < 2 * inter; j++) gateUp[j] = gateUp[j]! + xi * w.gateUp[row + j]!;
    }
    const act = new Float64Array(inter);
    for (let j = 0; j < inter; j++) act[j] = silu(gateUp[j]!) * gateUp[inter + j]!;
    const downBase = e * inter * h;
    for (let j = 0; j < inter; j++) {
      for (let o = 0; o < h; o++) out[o] = out[o]! + act[j]! * w.down[downBase + j * h + o]!;
    }
  });
  return { out, routing };
}

/** Self-attention of one layer over the whole sequence (all positions' normed inputs `xs`). */
function attention(model: ReferenceModel, layer: number, w: LayerWeights, xs: Float64Array[], invFreq: Float64Array): Float64Array[] {
  const t = model.text;
  const { hiddenSize: h, numHeads, numKvHeads, headDim: d } = t;
  const isLlama4 = model.arch.modelType === 'llama4';
  const useRope = layerUsesRope(t, layer);
  const rotate = isLlama4 ? rotateInterleaved : rotateHalf;
  const qs: Float64Array[] = [];
  const ks: Float64Array[] = [];
  const vs: Float64Array[] = [];
  xs.forEach((x, pos) => {
    const q = linear(w.q, x, numHeads * d, h, w.qBias);
    const k = linear(w.k, x, numKvHeads * d, h, w.kBias);
    if (useRope) {
      for (let head = 0; head < numHeads; head++) rotate(q, head * d, d, pos, invFreq);
      for (let head = 0; head < numKvHeads; head++) rotate(k, head * d, d, pos, invFreq);
    }
    // Llama 4 QK-norm: parameter-free RMS normalisation of each head's q and k, RoPE layers only.
    if (isLlama4 && t.useQkNorm && useRope) {
      for (let head = 0; head < numHeads; head++) q.set(rmsNorm(q.subarray(head * d, (head + 1) * d), null, t.rmsNormEps), head * d);
      for (let head = 0; head < numKvHeads; head++) k.set(rmsNorm(k.subarray(head * d, (head + 1) * d), null, t.rmsNormEps), head * d);
    }
    if (model.temperatureTuning && !useRope) {
      const scale = attentionTemperature(pos, model.temperatureTuning.floorScale, model.temperatureTuning.attnScale);
      for (let i = 0; i < q.length; i++) q[i] = q[i]! * scale;
    }
    qs.push(q);
    ks.push(k);
    vs.push(linear(w.v, x, numKvHeads * d, h, w.vBias));
  });
  // Grouped-query attention: query head `head` reads kv head floor(head / group) (HF repeat_kv).
  const group = numHeads / numKvHeads;
  const scale = 1 / Math.sqrt(d);
  return xs.map((_, qPos) => {
    const heads = new Float64Array(numHeads * d);
    for (let head = 0; head < numHeads; head++) {
      const kvHead = Math.floor(head / group);
      const keys: number[] = [];
      const scores: number[] = [];
      for (let kPos = 0; kPos <= qPos; kPos++) {
        if (!canAttend(t, layer, qPos, kPos)) continue;
        keys.push(kPos);
        scores.push(dot(qs[qPos]!, ks[kPos]!, d, head * d, kvHead * d) * scale);
      }
      const p = softmax(scores);
      keys.forEach((kPos, n) => {
        for (let i = 0; i < d; i++) heads[head * d + i] = heads[head * d + i]! + p[n]! * vs[kPos]![kvHead * d + i]!;
      });
    }
    return linear(w.o, heads, h, numHeads * d, w.oBias);
  });
}

/** The final hidden states (after the last RMSNorm), one per position. */
export function referenceHidden(model: ReferenceModel, ids: readonly number[]): Float64Array[] {
  const t = model.text;
  const h = t.hiddenSize;
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= t.vocabSize) throw new RangeError(`token id ${id} is outside the vocabulary [0, ${t.vocabSize})`);
  }
  // Token embeddings.
  const xs = ids.map((id) => Float64Array.from(model.embed.subarray(id * h, (id + 1) * h)));
  const invFreq = ropeInvFreq(t, ids.length);
  model.layers.forEach((w, layer) => {
    // Pre-norm attention block with residual.
    const normed = xs.map((x) => rmsNorm(x, w.inputNorm, t.rmsNormEps));
    const attnOut = attention(model, layer, w, normed, invFreq);
    xs.forEach((x, pos) => addInto(x, attnOut[pos]!));
    // Pre-norm feed-forward block (SwiGLU MLP, or Llama 4 MoE) with residual.
    xs.forEach((x) => {
      const n = rmsNorm(x, w.postAttentionNorm, t.rmsNormEps);
      addInto(x, w.moe ? moeForward(n, w.moe, t).out : denseMlp(n, w.mlp!, h));
    });
  });
  return xs.map((x) => rmsNorm(x, model.norm, t.rmsNormEps));
}

/** Next-token logits at every position: lm_head (or the tied embedding) times the final hidden state. */
export function referenceLogits(model: ReferenceModel, ids: readonly number[]): Float64Array[] {
  return referenceHidden(model, ids).map((x) => linear(model.lmHead, x, model.text.vocabSize, model.text.hiddenSize));
}

/**
 * log p(ids[i] | ids[<i]) for every position; entry 0 is null (nothing conditions the first token).
 * This is the `token_logprobs` of `llama-eval logprobs`.
 */
export function referenceTokenLogprobs(model: ReferenceModel, ids: readonly number[]): (number | null)[] {
  const logits = referenceLogits(model, ids);
  return ids.map((id, i) => (i === 0 ? null : logSoftmax(logits[i - 1]!)[id]!));
}
