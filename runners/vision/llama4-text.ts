// LLaMA 4 early fusion on the text side: the token layout Llama4Processor writes for an image
// (processing_llama4.py `_prompt_split_image`), and the text forward with the projected image
// features in place of the <|patch|> embeddings (Llama4ForConditionalGeneration.forward:
// `get_placeholder_mask` + `inputs_embeds.masked_scatter`), through the embeddings hook of
// runners/reference.ts. After the embeddings, the text model is exactly Llama4ForCausalLM.
import { InputError } from '../../results/errors.ts';
import { logSoftmax } from '../reference-ops.ts';
import { projectorFor, referenceHidden, type ReferenceModel } from '../reference.ts';

/** The special tokens of Llama4Processor (its __init__ defaults), by id. */
export interface Llama4ImageTokens {
  imageStart: number;
  imageEnd: number;
  /** `<|image|>`: precedes the global tile's patches. */
  image: number;
  /** `<|patch|>` = config.image_token_index: the positions image features replace. */
  patch: number;
  tileX: number;
  tileY: number;
}

export const LLAMA4_IMAGE_TOKEN_NAMES = {
  imageStart: '<|image_start|>',
  imageEnd: '<|image_end|>',
  image: '<|image|>',
  patch: '<|patch|>',
  tileX: '<|tile_x_separator|>',
  tileY: '<|tile_y_separator|>',
} as const satisfies Record<keyof Llama4ImageTokens, string>;

/**
 * The ids of the image tokens, as the processor gets them (tokenizer.convert_tokens_to_ids);
 * `<|patch|>` must be config.image_token_index, which the model's placeholder mask compares with.
 */
export function llama4ImageTokens(encode: (text: string) => number[], config: Record<string, unknown>, model: string): Llama4ImageTokens {
  const ids = {} as Llama4ImageTokens;
  for (const [key, name] of Object.entries(LLAMA4_IMAGE_TOKEN_NAMES) as [keyof Llama4ImageTokens, string][]) {
    const enc = encode(name);
    if (enc.length !== 1) throw new InputError(`model ${model}: the tokenizer has no single token ${name} (encodes to ${enc.length} ids); a Llama 4 vision checkpoint's tokenizer.json must define it`);
    ids[key] = enc[0]!;
  }
  const configured = config.image_token_index;
  if (typeof configured === 'number' && configured !== ids.patch) {
    throw new InputError(`model ${model}: config.json image_token_index ${configured} is not the tokenizer's <|patch|> id ${ids.patch}; the image features would land on the wrong tokens`);
  }
  return ids;
}

/**
 * Llama4Processor._prompt_split_image as ids: <|image_start|>, then (only for more than one tile)
 * each row of tiles as patch groups separated by <|tile_x_separator|> and ended by
 * <|tile_y_separator|>, then <|image|> and the global tile's patches, then <|image_end|>.
 */
export function llama4ImagePromptIds(tokens: Llama4ImageTokens, aspectRatio: readonly [number, number], patchesPerTile: number): number[] {
  const [ratioH, ratioW] = aspectRatio;
  const patches = () => new Array<number>(patchesPerTile).fill(tokens.patch);
  const out = [tokens.imageStart];
  if (ratioH * ratioW > 1) {
    for (let y = 0; y < ratioH; y++) {
      for (let x = 0; x < ratioW; x++) {
        out.push(...patches());
        if (x < ratioW - 1) out.push(tokens.tileX);
      }
      out.push(tokens.tileY);
    }
  }
  out.push(tokens.image, ...patches(), tokens.imageEnd);
  return out;
}

/**
 * get_placeholder_mask + masked_scatter: the i-th <|patch|> position gets the i-th feature. The
 * counts must match (HF raises "Image features and image tokens do not match").
 */
export function patchEmbeddings(ids: readonly number[], patchToken: number, features: readonly Float64Array[]): Map<number, Float64Array> {
  const positions = ids.flatMap((id, pos) => (id === patchToken ? [pos] : []));
  if (positions.length !== features.length) {
    throw new InputError(`image features and image tokens do not match: ${positions.length} <|patch|> tokens in the sequence, ${features.length} features (a truncated context cut into the image block; shorten the prompt)`);
  }
  return new Map(positions.map((pos, i) => [pos, features[i]!]));
}

/** Final hidden states of a Llama 4 text model whose <|patch|> positions hold `features`. */
export function llama4FusedHidden(model: ReferenceModel, ids: readonly number[], patchToken: number, features: readonly Float64Array[]): Float64Array[] {
  const h = model.text.hiddenSize;
  if (features.some((f) => f.length !== h)) throw new InputError(`image features must have the text hidden size ${h}; project them with multi_modal_projector first`);
  return referenceHidden(model, ids, undefined, patchEmbeddings(ids, patchToken, features));
}

/**
 * log p(ids[i] | ids[<i], image) per position; entry 0 is null (nothing conditions it), and so are
 * the <|patch|> positions (their input is an image feature, not the token).
 */
export function llama4FusedTokenLogprobs(model: ReferenceModel, ids: readonly number[], patchToken: number, features: readonly Float64Array[]): (number | null)[] {
  const project = projectorFor(model.peft);
  const t = model.text;
  const logits = llama4FusedHidden(model, ids, patchToken, features).map((x) => project('lm_head', model.lmHead, x, t.vocabSize, t.hiddenSize));
  return ids.map((id, i) => (i === 0 || id === patchToken ? null : logSoftmax(logits[i - 1]!)[id]!));
}
