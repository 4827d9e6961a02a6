// What a PEFT method adds to the float64 reference forward, and the small pieces of math the forward
// calls through its hooks (runners/reference.ts, marked "PEFT hook"). Kept apart from the loaders so
// that reference.ts imports only arithmetic, never file reading.
//
// LoRA (Hu et al. 2021, arXiv 2106.09685; HF PEFT src/peft/tuners/lora/layer.py `Linear.forward`):
//   y = W x + b + scale * B (A x),  scale = lora_alpha / r  (or lora_alpha / sqrt(r) with use_rslora).
// DoRA (Liu et al. 2024, arXiv 2402.09353; PEFT src/peft/tuners/lora/dora.py `DoraLinearLayer.forward`):
//   y = m / ||W + scale B A||_row * (W x + scale * B (A x)) + b, the norm per output row, detached.

export interface LoraBranch {
  /** lora_A.weight, [r, in] row-major. */
  a: Float32Array;
  /** lora_B.weight, [out, r] row-major. */
  b: Float32Array;
  r: number;
  inFeatures: number;
  outFeatures: number;
  scale: number;
  /** DoRA: magnitude / ||W + scale B A|| per output row; null for plain LoRA. */
  doraScale: Float64Array | null;
}

/**
 * LLaMA-Adapter V1 adaption prompt of one layer (HF PEFT adaption_prompt/layer.py `AdaptedAttention`):
 * `adaption_prompt` [1, len, hidden] and `adaption_gate` (one scalar in PEFT; one per head in the
 * official release, alpaca_finetuning_v1/llama/model.py `self.gate`).
 */
export interface AdaptionPrompt {
  prompt: Float32Array;
  len: number;
  /** Length 1 (scalar gate) or numHeads (per-head gate). */
  gate: Float32Array;
  /** LLaMA-Adapter V2 (official llama/model.py): the gate enters as tanh(gate). V1 and PEFT use it as is. */
  gateTanh: boolean;
  /**
   * Official release: the gated prompt attention is added to the heads before `wo` (one `wo`, one
   * bias). PEFT AdaptedAttention adds `o_proj(adapter_output)` to the attention output instead.
   */
  beforeOProj: boolean;
}

/** PEFT state added to a ReferenceModel; module keys are HF module names (`model.layers.0.self_attn.q_proj`). */
export interface ReferencePeft {
  /** Unmerged LoRA / DoRA side branches. */
  lora: Map<string, LoraBranch>;
  /**
   * Merged LoRA weights in float64, W + scale B A (times the DoRA row scale), used by the reference
   * forward in place of the float32 field so merged and unmerged agree to float64 rounding. The
   * model's float32 fields hold the same weights rounded, for consumers that build graphs from them.
   */
  merged: Map<string, Float64Array>;
  /** LLaMA-Adapter V1 prompts by decoder layer index. */
  adaptionPrompts: Map<number, AdaptionPrompt>;
  /** LLaMA-Adapter V2 `wX_scale`: multiplies the linear's input (forward_linear_with_scale_and_bias); unmerged only. */
  inputScale: Map<string, Float32Array>;
  /** LLaMA-Adapter V2 `wX_bias`: added to the linear's output. */
  extraBias: Map<string, Float32Array>;
  /**
   * LLaMA-Adapter V2's visual path (runners/peft/visual.ts): per image, its visual query is added to
   * the adaption prompts of `layers`. Absent for every other method.
   */
  visual?: VisualAdapter;
  /** Human label of what was applied (`lora r=8 ... merged`). */
  label: string;
}

/** The weights of LLaMA-Adapter V2's visual path, under their official names (harness/peft/visual.ts). */
export interface VisualAdapter {
  dims: { dim: number; depth: number; heads: number; mlpHidden: number };
  /** Width of the image features it reads (the base's projector output: the text hidden size). */
  featureDim: number;
  /** query_len: rows of visual_query, and of each layer's adaption prompt. */
  queryLen: number;
  weights: ReadonlyMap<string, Float32Array>;
  /** The decoder layers whose adaption prompts get the visual query. */
  layers: readonly number[];
}

/** A copy of `peft` (or an empty state) with `label` appended, for one more method on top. */
export function extendPeft(peft: ReferencePeft | undefined, label: string): ReferencePeft {
  return {
    lora: new Map(peft?.lora),
    merged: new Map(peft?.merged),
    adaptionPrompts: new Map(peft?.adaptionPrompts),
    inputScale: new Map(peft?.inputScale),
    extraBias: new Map(peft?.extraBias),
    ...(peft?.visual ? { visual: peft.visual } : {}),
    label: [peft?.label, label].filter(Boolean).join(' + '),
  };
}

/** Adds the LoRA (or DoRA) side branch to `y` = W x + bias, in place, and returns it. */
export function addLoraBranch(branch: LoraBranch, x: ArrayLike<number>, y: Float64Array, bias: ArrayLike<number> | null | undefined): Float64Array {
  const { a, b, r, inFeatures: inp, outFeatures: out, scale, doraScale } = branch;
  const ax = new Float64Array(r);
  for (let k = 0; k < r; k++) {
    let s = 0;
    const row = k * inp;
    for (let i = 0; i < inp; i++) s += a[row + i]! * x[i]!;
    ax[k] = s;
  }
  for (let o = 0; o < out; o++) {
    let s = 0;
    const row = o * r;
    for (let k = 0; k < r; k++) s += b[row + k]! * ax[k]!;
    if (doraScale) {
      // PEFT: result + (m - 1) * (Wx) + m * scale * B A x with Wx taken without the bias.
      const bo = bias ? bias[o]! : 0;
      const d = doraScale[o]!;
      y[o] = d * (y[o]! - bo) + d * scale * s + bo;
    } else {
      y[o] = y[o]! + scale * s;
    }
  }
  return y;
}

/** W + scale * B A (times the DoRA row scale), in float64: the merged weight, [out, in]. */
export function mergedWeight(w: ArrayLike<number>, branch: LoraBranch): Float64Array {
  const { a, b, r, inFeatures: inp, outFeatures: out, scale, doraScale } = branch;
  const merged = new Float64Array(out * inp);
  for (let o = 0; o < out; o++) {
    const d = doraScale ? doraScale[o]! : 1;
    for (let i = 0; i < inp; i++) {
      let s = 0;
      for (let k = 0; k < r; k++) s += b[o * r + k]! * a[k * inp + i]!;
      merged[o * inp + i] = d * (w[o * inp + i]! + scale * s);
    }
  }
  return merged;
}

/** DoRA's row scale m / ||W + scale B A|| (dora.py get_weight_norm: torch.linalg.norm(weight, dim=1)). */
export function doraRowScale(w: ArrayLike<number>, branch: Omit<LoraBranch, 'doraScale'>, magnitude: ArrayLike<number>): Float64Array {
  const plain = mergedWeight(w, { ...branch, doraScale: null });
  const { inFeatures: inp, outFeatures: out } = branch;
  const scale = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let ss = 0;
    for (let i = 0; i < inp; i++) ss += plain[o * inp + i]! ** 2;
    scale[o] = magnitude[o]! / Math.sqrt(ss);
  }
  return scale;
}
