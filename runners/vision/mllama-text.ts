// The text forward of LLaMA 3.2 Vision with an image: the text reference (runners/reference.ts,
// through its vision hook) with the cross-attention layers reading the image's projected tokens,
// and the cross-attention mask HF's MllamaProcessor builds from where <|image|> sits in the ids.
import { logSoftmax } from '../reference-ops.ts';
import { projectorFor, referenceHidden, type CrossAttentionStates, type ReferenceModel } from '../reference.ts';

/** MllamaConfig.image_token_index (default 128256, the first id past the text vocabulary). */
export function imageTokenId(config: Record<string, unknown>): number {
  const id = config.image_token_index;
  return typeof id === 'number' && Number.isInteger(id) ? id : 128256;
}

/**
 * HF MllamaProcessor `get_cross_attention_token_mask` + `convert_sparse_cross_attention_mask_to_dense`
 * for one image: rows from the first <|image|> token on see the image's real tiles (the first
 * `numTiles` of `maxTiles`); rows before it see none (the cross-attention layer then zeroes them).
 */
export function crossAttentionTileMask(ids: readonly number[], imageToken: number, numTiles: number, maxTiles: number): number[][] {
  const start = ids.indexOf(imageToken);
  return ids.map((_, row) => Array.from({ length: maxTiles }, (_, tile) => (start >= 0 && row >= start && tile < numTiles ? 1 : 0)));
}

/** Next-token logits at every position with the image's cross-attention states. */
export function referenceVisionLogits(model: ReferenceModel, ids: readonly number[], image: CrossAttentionStates): Float64Array[] {
  const project = projectorFor(model.peft);
  return referenceHidden(model, ids, image).map((x) => project('lm_head', model.lmHead, x, model.text.vocabSize, model.text.hiddenSize));
}

/**
 * log p(ids[i] | ids[<i], image) per position; entry 0 is null, as in referenceTokenLogprobs, and so
 * is any id past lm_head's vocabulary (<|image|>: it has an embedding but is never predicted).
 */
export function referenceVisionTokenLogprobs(model: ReferenceModel, ids: readonly number[], image: CrossAttentionStates): (number | null)[] {
  const logits = referenceVisionLogits(model, ids, image);
  return ids.map((id, i) => (i === 0 || id >= model.text.vocabSize ? null : logSoftmax(logits[i - 1]!)[id]!));
}
