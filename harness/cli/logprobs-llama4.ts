// `llama-eval logprobs --image` and `generate --image` on LLaMA 4 with a vision tower (Llama4ForConditionalGeneration):
// the image's block of ids (Llama4Processor `_prompt_split_image`: tile separators, `<|patch|>`
// rows, global tile) goes before the text, and the image features replace the `<|patch|>`
// embeddings (early fusion). The `<|patch|>` positions get null, as llama4FusedTokenLogprobs gives
// them: their input is an image feature, not the token.
import { InputError } from '../errors.ts';
import type { Checkpoint } from '../../runners/hf/checkpoint.ts';
import { loadReferenceFromCheckpoint } from '../../runners/reference-weights.ts';
import type { LlamaTokenizer } from '../../runners/tokenizer.ts';
import { referenceGreedyIds } from './greedy.ts';
import { encodeLlama4Image, llama4ImageBlock, openLlama4Reference } from '../../runners/vision/llama4-checkpoint.ts';
import { llama4FusedHidden, llama4FusedTokenLogprobs, llama4ImagePromptIds, llama4ImageTokens } from '../../runners/vision/llama4-text.ts';

export function isLlama4Vision(checkpoint: Checkpoint): boolean {
  return checkpoint.arch.modelType === 'llama4' && checkpoint.arch.vision !== null;
}

export interface Llama4ImageLogprobs {
  input_ids: number[];
  token_logprobs: (number | null)[];
}

export async function llama4ImageLogprobs(
  checkpoint: Checkpoint,
  tokenizer: LlamaTokenizer,
  given: readonly number[],
  image: { bytes: Uint8Array; name: string },
  backend: 'ort' | 'reference',
  peft: string | undefined,
): Promise<Llama4ImageLogprobs> {
  if (peft !== undefined) throw new InputError(`--peft with --image on ${checkpoint.id}: adapters on LLaMA 4 image inputs are not supported yet; drop one of them`);
  const tokens = llama4ImageTokens((t) => tokenizer.encode(t, { addSpecialTokens: false }), checkpoint.config, checkpoint.id);
  const window = checkpoint.arch.text.maxPositionEmbeddings;
  const fits = (ids: readonly number[]) => {
    if (ids.length > window) throw new InputError(`${ids.length} tokens with the image block: the model window is ${window}; shorten the text`);
  };
  if (backend === 'reference') {
    const ref = openLlama4Reference(checkpoint.dir, checkpoint.id);
    try {
      const encoded = await encodeLlama4Image(ref, image.bytes, image.name);
      const ids = [...llama4ImageBlock(ref, tokens, encoded), ...given];
      fits(ids);
      return { input_ids: ids, token_logprobs: llama4FusedTokenLogprobs(loadReferenceFromCheckpoint(checkpoint), ids, tokens.patch, encoded.features) };
    } finally {
      ref.close();
    }
  }
  const [{ OrtLlama4Model }, { scoreRow }] = await Promise.all([import('../../runners/ort/llama4-model.ts'), import('../../runners/ort/llama-model.ts')]);
  const model = await OrtLlama4Model.fromDir(checkpoint.dir, checkpoint.config, checkpoint.id, { device: 'cpu' });
  try {
    const encoded = await model.encodeImage(image.bytes, image.name);
    const ids = [...llama4ImagePromptIds(tokens, encoded.image.aspectRatio, model.tokensPerTile), ...given];
    fits(ids);
    const { logits } = await model.forward({ ids, past: model.emptyCache(), features: encoded.features, rows: ids.map((_, i) => i) });
    const vocab = checkpoint.arch.text.vocabSize;
    return { input_ids: ids, token_logprobs: ids.map((id, i) => (i === 0 || id === tokens.patch ? null : scoreRow(logits, i - 1, vocab, id).logprob)) };
  } finally {
    await model.close();
  }
}

/** Greedy ids after the image block and `text` (generate --image): ORT KV-cached, or a full reference forward per token. */
export async function llama4ImageGreedy(
  checkpoint: Checkpoint,
  tokenizer: LlamaTokenizer,
  text: readonly number[],
  image: { bytes: Uint8Array; name: string },
  backend: 'ort' | 'reference',
  maxNew: number,
  peft: string | undefined,
): Promise<number[]> {
  if (peft !== undefined) throw new InputError(`--peft with --image on ${checkpoint.id}: adapters on LLaMA 4 image inputs are not supported yet; drop one of them`);
  if (backend === 'ort') {
    const { OrtLlama4VisionRunner } = await import('../../runners/ort/llama4-vision-runner.ts');
    const runner = await OrtLlama4VisionRunner.open(checkpoint, { device: 'cpu' });
    try {
      return await runner.greedyAfterImage(text, image.bytes, maxNew);
    } finally {
      await runner.close();
    }
  }
  const [{ projectorFor }, { eosIds }] = await Promise.all([import('../../runners/reference.ts'), import('../../runners/ort/runner.ts')]);
  const tokens = llama4ImageTokens((t) => tokenizer.encode(t, { addSpecialTokens: false }), checkpoint.config, checkpoint.id);
  const ref = openLlama4Reference(checkpoint.dir, checkpoint.id);
  let encoded;
  let ids: number[];
  try {
    encoded = await encodeLlama4Image(ref, image.bytes, image.name);
    ids = [...llama4ImageBlock(ref, tokens, encoded), ...text];
  } finally {
    ref.close();
  }
  const model = loadReferenceFromCheckpoint(checkpoint);
  const t = model.text;
  // lm_head on the last row only.
  return referenceGreedyIds(ids, Math.min(maxNew, t.maxPositionEmbeddings - ids.length + 1), eosIds(checkpoint, tokenizer), (seq) =>
    projectorFor(model.peft)('lm_head', model.lmHead, llama4FusedHidden(model, seq, tokens.patch, encoded.features).at(-1)!, t.vocabSize, t.hiddenSize));
}
