// The ORT runner of LLaMA 3.2 Vision (mllama): image + text requests through the vision and text
// graphs (mllama-model.ts), behind the Runner contract. Prompt layout and tokenization are the
// reference runner's (runners/reference-runner.ts: `<|image|>` before the context as HF's
// "<|image|><|begin_of_text|>..." base-model prompt, HFLM `_encode_pair`, left truncation), so the
// two backends score the same token sequences; test/e2e/vision-run.test.ts holds them to the same
// per-sample scores.
//
// The request loop and its caching (each image encoded once, multiple-choice prefill reuse, KV-cached
// greedy decode, batch 1) are image-runner.ts's, shared with the LLaMA 4 ORT image runner.
import { InputError } from '../../results/errors.ts';
import type { Checkpoint } from '../hf/checkpoint.ts';
import { LlamaTokenizer } from '../tokenizer.ts';
import { loadReferenceFromCheckpoint } from '../reference-weights.ts';
import { assertAcceptsImages, openMllamaReference } from '../vision/mllama-checkpoint.ts';
import { crossAttentionTileMask, imageTokenId } from '../vision/mllama-text.ts';
import { OrtImageRunner, type ImageForward } from './image-runner.ts';
import { scoreRow, type KvCache } from './llama-model.ts';
import { OrtMllamaModel, type EncodedImage } from './mllama-model.ts';
import { mllamaPeftPlan, type MllamaPeftPlan } from './mllama-peft.ts';
import type { Feed, OrtDevice } from './session.ts';

export interface OrtMllamaRunnerOptions {
  device: OrtDevice;
  /** Mirrors HFLM's `add_bos_token`; default false (as the reference and ORT text runners). */
  addBos?: boolean;
  /** ORT intra-op threads; 0 (default) lets ORT pick. */
  threads?: number;
  /** `--peft`: applied to the text model as the reference backend applies it (mllama-peft.ts). */
  peft?: string;
  /** The checkpoint's tokenizer when the caller has loaded it already (a 128K vocabulary takes ~1 s). */
  tokenizer?: LlamaTokenizer;
}

/** Both graphs of an mllama checkpoint, with `--peft` applied as the reference backend applies it. */
export interface OpenedMllama {
  model: OrtMllamaModel;
  peft: Pick<MllamaPeftPlan, 'label' | 'visualFeeds'> | null;
}

export async function openOrtMllama(checkpoint: Checkpoint, options: Pick<OrtMllamaRunnerOptions, 'device' | 'threads' | 'peft'>): Promise<OpenedMllama> {
  assertAcceptsImages(checkpoint.arch, checkpoint.id);
  const session = { device: options.device, intraOpThreads: options.threads ?? 0 };
  if (options.peft === undefined || options.peft.trim() === '') return { model: await OrtMllamaModel.fromDir(checkpoint.dir, session), peft: null };
  const ref = openMllamaReference(checkpoint.dir);
  try {
    const plan = mllamaPeftPlan(ref, loadReferenceFromCheckpoint(checkpoint), options.peft);
    return { model: await OrtMllamaModel.create({ ...ref, get: plan.get }, session, plan), peft: plan };
  } finally {
    ref.close();
  }
}

/** LLaMA-Adapter V2's visual path: the prompt feeds of one encoded image (none without that path). */
function visualPromptFeeds(opened: OpenedMllama, image: EncodedImage): Record<string, Feed> | undefined {
  const { tokens, tiles } = opened.model.shape;
  return opened.peft?.visualFeeds?.(image.states, image.numTiles * (tokens / tiles));
}

/**
 * log p(ids[i] | ids[<i], image) per position, as referenceVisionTokenLogprobs: null at 0 and at ids
 * past lm_head's vocabulary (<|image|>), which are fed but never predicted (`llama-eval logprobs`).
 */
export async function ortMllamaTokenLogprobs(opened: OpenedMllama, config: Record<string, unknown>, ids: readonly number[], image: { bytes: Uint8Array; name: string } | null): Promise<(number | null)[]> {
  const { model } = opened;
  const t = model.arch.text;
  if (ids.length === 0 || ids.length > t.maxPositionEmbeddings) throw new InputError(`${ids.length} tokens: expected 1 to ${t.maxPositionEmbeddings} (the model window)`);
  const encoded = image ? await model.encodeImage(image.bytes, image.name) : null;
  const { logits } = await model.forward({
    ids,
    past: model.emptyCache(),
    image: encoded ? { encoded, tileMask: crossAttentionTileMask(ids, imageTokenId(config), encoded.numTiles, model.shape.tiles) } : null,
    rows: ids.map((_, i) => i),
    peftFeeds: encoded ? visualPromptFeeds(opened, encoded) : undefined,
  });
  return ids.map((id, i) => (i === 0 || id >= t.vocabSize ? null : scoreRow(logits, i - 1, t.vocabSize, id).logprob));
}

export class OrtMllamaRunner extends OrtImageRunner<EncodedImage, OrtMllamaModel> {
  private readonly imageToken: number;
  private readonly visualFeeds = new WeakMap<EncodedImage, Record<string, Feed>>();

  constructor(
    checkpoint: Checkpoint,
    model: OrtMllamaModel,
    tokenizer: LlamaTokenizer,
    addBos = false,
    private readonly peft: Pick<MllamaPeftPlan, 'label' | 'visualFeeds'> | null = null,
  ) {
    super(checkpoint, model, tokenizer, addBos, peft?.label ?? null);
    this.imageToken = imageTokenId(checkpoint.config);
  }

  /** Builds the vision and text graphs of an opened mllama checkpoint. */
  static async open(checkpoint: Checkpoint, options: OrtMllamaRunnerOptions): Promise<OrtMllamaRunner> {
    assertAcceptsImages(checkpoint.arch, checkpoint.id);
    const tokenizer = options.tokenizer ?? LlamaTokenizer.fromDir(checkpoint.dir);
    const { model, peft } = await openOrtMllama(checkpoint, options);
    return new OrtMllamaRunner(checkpoint, model, tokenizer, options.addBos ?? false, peft);
  }

  protected encodeImage(bytes: Uint8Array, name: string): Promise<EncodedImage> {
    return this.model.encodeImage(bytes, name);
  }

  /** `<|image|>` before the context, as HF's "<|image|><|begin_of_text|>..." base-model prompt. */
  protected imageIds(): number[] {
    return [this.imageToken];
  }

  /** LLaMA-Adapter V2's visual path: this image's prompts, computed once per image. */
  private visualPromptFeeds(image: EncodedImage): Record<string, Feed> | undefined {
    if (!this.peft?.visualFeeds) return undefined;
    let feeds = this.visualFeeds.get(image);
    if (!feeds) this.visualFeeds.set(image, (feeds = visualPromptFeeds({ model: this.model, peft: this.peft }, image) ?? {}));
    return feeds;
  }

  /** The tile mask is HF's over the whole sequence, so rows after <|image|> see its tiles. */
  protected forward(all: readonly number[], from: number, past: KvCache, image: EncodedImage | null, rows: readonly number[]): Promise<ImageForward> {
    const tileMask = image ? crossAttentionTileMask(all, this.imageToken, image.numTiles, this.model.shape.tiles).slice(from) : null;
    const peftFeeds = image ? this.visualPromptFeeds(image) : undefined;
    return this.model.forward({ ids: all.slice(from), past, image: image && tileMask ? { encoded: image, tileMask } : null, rows, peftFeeds });
  }

  /**
   * Greedy token ids after `prompt` (ids used as given: <|image|> where the caller put it), KV-cached;
   * an eos token, when reached, is the last of them (`llama-eval generate`).
   */
  async greedyIds(prompt: readonly number[], image: Uint8Array | null, maxTokens: number): Promise<number[]> {
    if (prompt.length === 0 || prompt.length > this.maxPositions) throw new InputError(`prompt of ${prompt.length} tokens: expected 1 to ${this.maxPositions} (the model window)`);
    const encoded = await this.imageOf(image ? [image] : undefined);
    return this.greedy([...prompt], encoded?.value ?? null, maxTokens, []);
  }
}
