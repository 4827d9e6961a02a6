// The ORT runner of LLaMA 4 with images (Llama4ForConditionalGeneration): image + text requests
// through the vision and text graphs (llama4-model.ts), behind the Runner contract. Prompt layout
// and tokenization are the reference runner's (runners/reference-runner.ts: the image block of
// Llama4Processor._prompt_split_image before the context, HFLM `_encode_pair`, left truncation), so
// the two backends score the same token sequences; test/e2e/vision-run.test.ts holds them to the
// same per-sample scores.
//
// The request loop, caching and layout are image-runner.ts's (shared with the mllama ORT runner).
import { InputError } from '../../results/errors.ts';
import type { Checkpoint } from '../hf/checkpoint.ts';
import { LlamaTokenizer } from '../tokenizer.ts';
import { assertLlama4AcceptsImages } from '../vision/llama4-checkpoint.ts';
import { llama4ImagePromptIds, llama4ImageTokens, type Llama4ImageTokens } from '../vision/llama4-text.ts';
import { OrtImageRunner, type ImageForward } from './image-runner.ts';
import type { KvCache } from './llama-model.ts';
import { OrtLlama4Model } from './llama4-model.ts';
import type { OrtDevice } from './session.ts';

export interface OrtLlama4RunnerOptions {
  device: OrtDevice;
  /** Mirrors HFLM's `add_bos_token`; default false (as the reference and ORT text runners). */
  addBos?: boolean;
  /** ORT intra-op threads; 0 (default) lets ORT pick. */
  threads?: number;
  /** `--peft`: not supported on LLaMA 4 vision checkpoints on ORT yet (refused). */
  peft?: string;
}

/** An encoded image: the ids of its block in the text and the rows for its `<|patch|>` tokens. */
interface FusedImage {
  block: number[];
  features: Float32Array;
}

export class OrtLlama4VisionRunner extends OrtImageRunner<FusedImage, OrtLlama4Model> {
  private readonly tokens: Llama4ImageTokens;

  constructor(
    checkpoint: Checkpoint,
    model: OrtLlama4Model,
    tokenizer: LlamaTokenizer,
    addBos = false,
  ) {
    super(checkpoint, model, tokenizer, addBos, null);
    this.tokens = llama4ImageTokens((t) => tokenizer.encode(t, { addSpecialTokens: false }), checkpoint.config, checkpoint.id);
  }

  /** Builds the vision and text graphs of an opened Llama4ForConditionalGeneration checkpoint. */
  static async open(checkpoint: Checkpoint, options: OrtLlama4RunnerOptions): Promise<OrtLlama4VisionRunner> {
    assertLlama4AcceptsImages(checkpoint.arch, checkpoint.id);
    if (options.peft !== undefined) {
      throw new InputError(`model ${checkpoint.id}: --peft on a LLaMA 4 vision checkpoint is not supported by the ort backend yet; drop --peft or use --backend reference`);
    }
    const tokenizer = LlamaTokenizer.fromDir(checkpoint.dir);
    const model = await OrtLlama4Model.fromDir(checkpoint.dir, checkpoint.config, checkpoint.id, { device: options.device, intraOpThreads: options.threads ?? 0 });
    return new OrtLlama4VisionRunner(checkpoint, model, tokenizer, options.addBos ?? false);
  }

  protected async encodeImage(bytes: Uint8Array, name: string): Promise<FusedImage> {
    const { image, features } = await this.model.encodeImage(bytes, name);
    return { block: llama4ImagePromptIds(this.tokens, image.aspectRatio, this.model.tokensPerTile), features };
  }

  protected imageIds(image: FusedImage): number[] {
    return image.block;
  }

  /**
   * One forward of `all.slice(from)` after a cache holding `all.slice(0, from)`; `rows` index the new
   * tokens. The new tokens' `<|patch|>` rows are those of the image in order (masked_scatter over
   * the whole sequence), so a sequence whose truncation cut into the image block is refused.
   */
  protected async forward(all: readonly number[], from: number, past: KvCache, image: FusedImage | null, rows: readonly number[]): Promise<ImageForward> {
    const patch = this.tokens.patch;
    const count = (ids: readonly number[]) => ids.reduce((n, id) => n + (id === patch ? 1 : 0), 0);
    const hidden = this.model.arch.text.hiddenSize;
    const imageRows = image ? image.features.length / hidden : 0;
    if (count(all) !== imageRows) {
      throw new InputError(`image features and image tokens do not match: ${count(all)} <|patch|> tokens in the sequence, ${imageRows} features (a truncated context cut into the image block; shorten the prompt)`);
    }
    const before = count(all.slice(0, from));
    const fresh = count(all.slice(from));
    const features = image && fresh > 0 ? image.features.subarray(before * hidden, (before + fresh) * hidden) : null;
    return this.model.forward({ ids: all.slice(from), past, features, rows });
  }
}
