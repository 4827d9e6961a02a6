// The oracle: a float64 forward pass of a LLaMA-family text model in plain TypeScript, written to be
// read top to bottom next to the papers (LLaMA, Touvron et al. 2023: pre-norm RMSNorm, SwiGLU,
// RoPE; LLaMA 2: grouped-query attention; LLaMA 3: 128K vocab, rope theta 500k, `llama3` RoPE
// scaling; LLaMA 4: MoE, NoPE layers, chunked attention, QK-norm, attention temperature tuning)
// and the behaviour of transformers' modeling_llama.py / modeling_llama4.py. No caching, no
// batching, no cleverness: every ORT graph is tested against this.
import { addInto, dot, linear, logSoftmax, rmsNorm, sigmoid, silu, softmax, swiglu } from './reference-ops.ts';
import { ropeInvFreq, rotateHalf, rotateInterleaved } from './reference-rope.ts';
import type { DenseMlpWeights, LayerWeights, MoeWeights, ReferenceModel } from './reference-weights.ts';
import type { AdaptionPrompt } from './peft/branch.ts';
import type { TextArch } from './arch.ts';
import { addLoraBranch, type ReferencePeft } from './peft/branch.ts';
import { mllamaCrossAttentionLayer, type CrossAttentionMask } from './vision/mllama-cross-attention.ts';

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

// --- PEFT hook (runners/peft): every linear goes through `project`, which, for the module key it
// names, uses the float64 merged LoRA weight or adds the unmerged LoRA/DoRA branch. Without an
// adapter it is exactly `linear`.
type Vec = ArrayLike<number>;
/** y = W x (+ b) of the module `key` (HF module name, `model.layers.0.self_attn.q_proj`). */
export type Projector = (key: string, w: Vec, x: Vec, out: number, inp: number, bias?: Vec | null) => Float64Array;

const plainProjector: Projector = (_key, w, x, out, inp, bias) => linear(w, x, out, inp, bias);

/** The projector of a model with PEFT state (plain `linear` when there is none). */
export function projectorFor(peft: ReferencePeft | undefined): Projector {
  if (!peft || (peft.lora.size === 0 && peft.merged.size === 0 && peft.inputScale.size === 0 && peft.extraBias.size === 0)) return plainProjector;
  return (key, w, x, out, inp, bias) => {
    // LLaMA-Adapter V2 forward_linear_with_scale_and_bias: module(x * scale) + bias.
    const scale = peft.inputScale.get(key);
    const xs = scale ? Float64Array.from(x, (v, i) => v * scale[i]!) : x;
    const y = linear(peft.merged.get(key) ?? w, xs, out, inp, bias);
    const branch = peft.lora.get(key);
    if (branch) addLoraBranch(branch, xs, y, bias);
    const extra = peft.extraBias.get(key);
    if (extra) addInto(y, extra);
    return y;
  };
}
// --- end PEFT hook

function denseMlp(x: Float64Array, w: DenseMlpWeights, hidden: number, prefix = '', project: Projector = plainProjector): Float64Array {
  if (project === plainProjector) return swiglu(x, w.gate, w.up, w.down, hidden, w.inter, { gate: w.gateBias, up: w.upBias, down: w.downBias });
  // Same arithmetic as swiglu, with each linear through the PEFT hook.
  const g = project(`${prefix}.gate_proj`, w.gate, x, w.inter, hidden, w.gateBias);
  const u = project(`${prefix}.up_proj`, w.up, x, w.inter, hidden, w.upBias);
  for (let i = 0; i < w.inter; i++) g[i] = silu(g[i]!) * u[i]!;
  return project(`${prefix}.down_proj`, w.down, g, hidden, w.inter, w.downBias);
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
  return routeFromLogits(linear(router, x, numExperts, hidden), numExperts, topK);
}

/** routeToken's choice from precomputed router logits (the PEFT hook computes them with LoRA). */
export function routeFromLogits(logits: Float64Array, numExperts: number, topK: number): Routing {
  const order = Array.from({ length: numExperts }, (_, e) => e).sort((a, b) => logits[b]! - logits[a]! || a - b);
  const experts = order.slice(0, topK);
  return { experts, scores: experts.map((e) => sigmoid(logits[e]!)) };
}

/**
 * Llama4TextMoe: the shared expert sees x; each routed expert sees x scaled by its router score
 * (the score multiplies the expert's input, not its output), and their outputs are summed.
 */
export function moeForward(x: Float64Array, w: MoeWeights, text: TextArch, prefix = '', project: Projector = plainProjector): { out: Float64Array; routing: Routing } {
  const moe = text.moe!;
  const h = text.hiddenSize;
  const inter = moe.expertIntermediateSize;
  const routing = routeFromLogits(project(`${prefix}.router`, w.router, x, moe.numExperts, h), moe.numExperts, moe.topK);
  const out = denseMlp(x, w.shared, h, `${prefix}.shared_expert`, project);
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
  const project = projectorFor(model.peft);
  const attn = `model.layers.${layer}.self_attn`;
  const qs: Float64Array[] = [];
  const ks: Float64Array[] = [];
  const vs: Float64Array[] = [];
  xs.forEach((x, pos) => {
    const q = project(`${attn}.q_proj`, w.q, x, numHeads * d, h, w.qBias);
    const k = project(`${attn}.k_proj`, w.k, x, numKvHeads * d, h, w.kBias);
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
    vs.push(project(`${attn}.v_proj`, w.v, x, numKvHeads * d, h, w.vBias));
  });
  // Grouped-query attention: query head `head` reads kv head floor(head / group) (HF repeat_kv).
  const group = numHeads / numKvHeads;
  const scale = 1 / Math.sqrt(d);
  // PEFT hook: LLaMA-Adapter V1 adaption prompt of this layer (null without one).
  const prompt = model.peft?.adaptionPrompts.get(layer) ?? null;
  const adapterKv = prompt ? adaptionPromptKv(prompt, w, attn, project, model) : null;
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
    const adapterHeads = prompt && adapterKv ? adaptionPromptHeads(prompt, adapterKv, qs[qPos]!, model) : null;
    // Official LLaMA-Adapter: the gated prompt attention joins the heads before wo.
    if (adapterHeads && prompt!.beforeOProj) addInto(heads, adapterHeads);
    const out = project(`${attn}.o_proj`, w.o, heads, h, numHeads * d, w.oBias);
    // PEFT AdaptedAttention.forward: output + o_proj(gate * softmax(q K_p^T / sqrt(d)) V_p).
    if (adapterHeads && !prompt!.beforeOProj) addInto(out, project(`${attn}.o_proj`, w.o, adapterHeads, h, numHeads * d, w.oBias));
    return out;
  });
}

/** The adaption prompt through k_proj / v_proj (no RoPE: PEFT projects `adaption_prompt` directly). */
function adaptionPromptKv(prompt: AdaptionPrompt, w: LayerWeights, attn: string, project: Projector, model: ReferenceModel): { ks: Float64Array[]; vs: Float64Array[] } {
  const { hiddenSize: h, numKvHeads, headDim: d } = model.text;
  const ks: Float64Array[] = [];
  const vs: Float64Array[] = [];
  for (let j = 0; j < prompt.len; j++) {
    const p = prompt.prompt.subarray(j * h, (j + 1) * h);
    ks.push(project(`${attn}.k_proj`, w.k, p, numKvHeads * d, h, w.kBias));
    vs.push(project(`${attn}.v_proj`, w.v, p, numKvHeads * d, h, w.vBias));
  }
  return { ks, vs };
}

/** gate * softmax over the prompt of (query . prompt key) / sqrt(d), times the prompt values, per head. */
function adaptionPromptHeads(prompt: AdaptionPrompt, kv: { ks: Float64Array[]; vs: Float64Array[] }, q: Float64Array, model: ReferenceModel): Float64Array {
  const { numHeads, numKvHeads, headDim: d } = model.text;
  const group = numHeads / numKvHeads; // PEFT repeat_interleave(adapter_k, factor, dim=1)
  const heads = new Float64Array(numHeads * d);
  for (let head = 0; head < numHeads; head++) {
    const kvHead = Math.floor(head / group);
    const p = softmax(kv.ks.map((k) => dot(q, k, d, head * d, kvHead * d) / Math.sqrt(d)));
    const g = prompt.gate.length === 1 ? prompt.gate[0]! : prompt.gate[head]!;
    const gate = prompt.gateTanh ? Math.tanh(g) : g;
    for (let j = 0; j < prompt.len; j++) {
      for (let i = 0; i < d; i++) heads[head * d + i] = heads[head * d + i]! + gate * p[j]! * kv.vs[j]![kvHead * d + i]!;
    }
  }
  return heads;
}

// --- vision hook (issue 10): the image side of an mllama forward, as the cross-attention layers
// read it: the projected image tokens (runners/vision encodeImage) and which text rows see which tiles.
export interface CrossAttentionStates {
  states: readonly Float64Array[];
  mask?: CrossAttentionMask;
}
// --- end vision hook

/**
 * The final hidden states (after the last RMSNorm), one per position. Vision hook: with `image`,
 * an mllama model's cross-attention layers run at their indices; without it they are skipped, as
 * HF MllamaTextModel skips them when there are no cross_attention_states (the text-only path).
 * With `inputEmbeds` (position -> hidden-size vector), those positions start from the given vector
 * instead of their token's embedding (LLaMA 4 image features, runners/vision/llama4-text.ts).
 */
export function referenceHidden(model: ReferenceModel, ids: readonly number[], image?: CrossAttentionStates, inputEmbeds?: ReadonlyMap<number, ArrayLike<number>>): Float64Array[] {
  const t = model.text;
  const h = t.hiddenSize;
  const cross = model.crossAttention;
  if (image && !cross) throw new Error('referenceHidden: image states given to a model without cross-attention layers');
  // mllama's embed_tokens has vocab_size + 8 rows (the <|image|> token lies past lm_head's vocabulary).
  const rows = cross ? model.embed.length / h : t.vocabSize;
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= rows) throw new RangeError(`token id ${id} is outside the vocabulary [0, ${rows})`);
  }
  // Token embeddings. Vision hook (LLaMA 4 early fusion): `inputEmbeds` replaces the embedding at
  // the positions it holds, as Llama4ForConditionalGeneration's masked_scatter puts the projected
  // image features at the <|patch|> positions.
  const xs = ids.map((id, pos) => Float64Array.from(inputEmbeds?.get(pos) ?? model.embed.subarray(id * h, (id + 1) * h)));
  const invFreq = ropeInvFreq(t, ids.length);
  const project = projectorFor(model.peft);
  const total = model.layers.length + (cross?.layers.length ?? 0);
  let selfIndex = 0;
  for (let layer = 0; layer < total; layer++) {
    if (cross?.layers.includes(layer)) {
      if (image) mllamaCrossAttentionLayer(xs, image.states, cross.get, layer, cross.arch, image.mask).forEach((y, pos) => xs[pos]!.set(y));
      continue;
    }
    const w = model.layers[selfIndex++]!;
    // Pre-norm attention block with residual.
    const normed = xs.map((x) => rmsNorm(x, w.inputNorm, t.rmsNormEps));
    const attnOut = attention(model, layer, w, normed, invFreq);
    xs.forEach((x, pos) => addInto(x, attnOut[pos]!));
    // Pre-norm feed-forward block (SwiGLU MLP, or Llama 4 MoE) with residual.
    xs.forEach((x) => {
      const n = rmsNorm(x, w.postAttentionNorm, t.rmsNormEps);
      const mlp = `model.layers.${layer}.${model.arch.modelType === 'llama4' ? 'feed_forward' : 'mlp'}`;
      addInto(x, w.moe ? moeForward(n, w.moe, t, mlp, project).out : denseMlp(n, w.mlp!, h, mlp, project));
    });
  }
  return xs.map((x) => rmsNorm(x, model.norm, t.rmsNormEps));
}

/** Next-token logits at every position: lm_head (or the tied embedding) times the final hidden state. */
export function referenceLogits(model: ReferenceModel, ids: readonly number[]): Float64Array[] {
  const project = projectorFor(model.peft);
  return referenceHidden(model, ids).map((x) => project('lm_head', model.lmHead, x, model.text.vocabSize, model.text.hiddenSize));
}

/**
 * log p(ids[i] | ids[<i]) for every position; entry 0 is null (nothing conditions the first token).
 * This is the `token_logprobs` of `llama-eval logprobs`.
 */
export function referenceTokenLogprobs(model: ReferenceModel, ids: readonly number[]): (number | null)[] {
  const logits = referenceLogits(model, ids);
  return ids.map((id, i) => (i === 0 ? null : logSoftmax(logits[i - 1]!)[id]!));
}
