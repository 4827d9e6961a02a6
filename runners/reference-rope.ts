// Rotary position embedding (Su et al. 2021, RoFormer) with the rope_scaling variants of the LLaMA
// family, computed as transformers' `modeling_rope_utils.py` does (ROPE_INIT_FUNCTIONS):
//   default  `_compute_default_rope_parameters`: inv_freq[i] = 1 / theta^(2i / d)
//   linear   `_compute_linear_scaling_rope_parameters`: inv_freq / factor
//   dynamic  `_compute_dynamic_ntk_parameters` + `dynamic_rope_update`: when the sequence is longer
//            than max_position_embeddings, theta *= (factor * L / max_pos - (factor - 1))^(d / (d - 2))
//   llama3   `_compute_llama3_parameters` (Llama 3.1+): wavelengths longer than
//            original_max / low_freq_factor are divided by factor, shorter than original_max /
//            high_freq_factor kept, and the band between interpolated smoothly.
// d is the head dimension (`head_dim`, which recent transformers use in place of hidden/heads).
// All of these return attention_factor 1, so cos/sin are not rescaled.
import type { TextArch } from './arch.ts';
import { InputError } from '../results/errors.ts';

export function defaultInvFreq(theta: number, dim: number): Float64Array {
  const inv = new Float64Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) inv[i] = 1 / theta ** ((2 * i) / dim);
  return inv;
}

export function llama3InvFreq(
  base: Float64Array,
  factor: number,
  lowFreqFactor: number,
  highFreqFactor: number,
  originalMaxPositionEmbeddings: number,
): Float64Array {
  const lowFreqWavelen = originalMaxPositionEmbeddings / lowFreqFactor;
  const highFreqWavelen = originalMaxPositionEmbeddings / highFreqFactor;
  return base.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highFreqWavelen) return f; // high frequency: unchanged
    if (wavelen > lowFreqWavelen) return f / factor; // low frequency: interpolated by factor
    const smooth = (originalMaxPositionEmbeddings / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
    return (1 - smooth) * (f / factor) + smooth * f;
  });
}

/** inv_freq for a sequence of `seqLen` positions (only `dynamic` depends on it). */
export function ropeInvFreq(text: TextArch, seqLen: number): Float64Array {
  const dim = text.headDim;
  const scaling = text.ropeScaling;
  if (!scaling) return defaultInvFreq(text.ropeTheta, dim);
  switch (scaling.ropeType) {
    case 'default':
      return defaultInvFreq(text.ropeTheta, dim);
    case 'linear':
      return defaultInvFreq(text.ropeTheta, dim).map((f) => f / scaling.factor);
    case 'dynamic': {
      const maxPos = text.maxPositionEmbeddings;
      if (seqLen <= maxPos) return defaultInvFreq(text.ropeTheta, dim);
      const theta = text.ropeTheta * ((scaling.factor * seqLen) / maxPos - (scaling.factor - 1)) ** (dim / (dim - 2));
      return defaultInvFreq(theta, dim);
    }
    case 'llama3': {
      const { lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings } = scaling;
      if (lowFreqFactor === undefined || highFreqFactor === undefined || originalMaxPositionEmbeddings === undefined) {
        throw new InputError('rope_scaling of type llama3 needs low_freq_factor, high_freq_factor and original_max_position_embeddings');
      }
      return llama3InvFreq(defaultInvFreq(text.ropeTheta, dim), scaling.factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings);
    }
    default:
      throw new InputError(`rope_scaling type "${scaling.ropeType}" is not used by any LLaMA model and not implemented (supported: linear, dynamic, llama3)`);
  }
}

/**
 * LLaMA 1-3 (HF `apply_rotary_pos_emb` with `rotate_half`): dimension i pairs with i + d/2, both
 * rotated by angle pos * inv_freq[i]. HF's checkpoint conversion permutes q/k rows so this equals
 * Meta's interleaved complex form.
 */
export function rotateHalf(x: Float64Array, offset: number, dim: number, pos: number, invFreq: Float64Array): void {
  const half = dim / 2;
  for (let i = 0; i < half; i++) {
    const angle = pos * invFreq[i]!;
    const c = Math.cos(angle);
    const s = Math.sin(angle);
    const a = x[offset + i]!;
    const b = x[offset + i + half]!;
    x[offset + i] = a * c - b * s;
    x[offset + i + half] = b * c + a * s;
  }
}

/**
 * LLaMA 4 (modeling_llama4.py `apply_rotary_emb`): q/k viewed as complex numbers from adjacent
 * pairs (2i, 2i+1) and multiplied by e^{i pos inv_freq[i]}; its checkpoints are not permuted.
 */
export function rotateInterleaved(x: Float64Array, offset: number, dim: number, pos: number, invFreq: Float64Array): void {
  for (let i = 0; i < dim / 2; i++) {
    const angle = pos * invFreq[i]!;
    const c = Math.cos(angle);
    const s = Math.sin(angle);
    const re = x[offset + 2 * i]!;
    const im = x[offset + 2 * i + 1]!;
    x[offset + 2 * i] = re * c - im * s;
    x[offset + 2 * i + 1] = re * s + im * c;
  }
}
