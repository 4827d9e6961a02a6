// QLoRA's base model (Dettmers et al. 2023, arXiv 2305.14314): every nn.Linear except lm_head stored
// as NF4 with double-quantized statistics (transformers' bitsandbytes integration replaces each
// nn.Linear not in `llm_int8_skip_modules`/lm_head by bnb Linear4bit; Llama4Router subclasses
// nn.Linear, so it is quantized too), and the forward runs on the dequantized weights
// (bnb dequantize_4bit before the matmul). Embeddings, norms and Llama 4's fused expert parameters
// stay as they are.
import type { ReferenceModel } from '../reference-weights.ts';
import { cloneModelShallow, referenceModules } from '../peft/modules.ts';
import { dequantizeAbsmax, nf4Dequantize, nf4Quantize, doubleQuantizeAbsmax, NF4_BLOCK } from './nf4.ts';

/** Module keys of the linears QLoRA quantizes (all nn.Linear but lm_head). */
export function nf4QuantizedModules(model: ReferenceModel): string[] {
  return [...referenceModules(model).values()].filter((s) => s.kind === 'linear' && s.key !== 'lm_head').map((s) => s.key);
}

/** quantize_4bit(nf4, blocksize 64, compress_statistics=True) then dequantize_4bit, as float32. */
export function nf4RoundTrip(w: Float32Array, blockSize = NF4_BLOCK): Float32Array {
  const t = nf4Quantize(w, blockSize);
  const stats = doubleQuantizeAbsmax(t.absmax);
  return nf4Dequantize({ ...t, absmax: dequantizeAbsmax(stats) });
}

/** A copy of `model` whose quantizable linears hold their NF4 (double-quant) dequantized weights. */
export function quantizeReferenceNf4(model: ReferenceModel): ReferenceModel {
  const out = cloneModelShallow(model);
  const slots = referenceModules(out);
  for (const key of nf4QuantizedModules(out)) {
    const slot = slots.get(key)!;
    slot.set(nf4RoundTrip(slot.get()));
  }
  return out;
}
