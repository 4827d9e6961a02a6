// Opens a LLaMA 4 (Llama4ForConditionalGeneration) checkpoint directory for the float64 vision
// reference and runs image bytes -> Llama4ImageProcessorFast -> vision tower -> projector, giving
// the embeddings that replace the <|patch|> tokens, with the ids of the image block to put in the
// text. Also the LLaMA 4 guard: a text-only Llama 4 checkpoint refuses images by name.
import type { ModelArch } from '../arch.ts';
import { InputError } from '../../results/errors.ts';
import type { TensorGetter } from './mllama-reference.ts';
import { cachedTensors, readCheckpointArch } from './checkpoint.ts';
import { llama4ProcessorConfig, preprocessLlama4Image, type Llama4PreprocessedImage, type Llama4ProcessorConfig } from './llama4-preprocess.ts';
import { llama4ImageEmbeddings, llama4TokensPerTile, llama4VisionArch, type Llama4VisionArch } from './llama4-reference.ts';
import { llama4ImagePromptIds, type Llama4ImageTokens } from './llama4-text.ts';

/** Throws unless `arch` is a Llama 4 checkpoint with a vision tower (Llama4ForConditionalGeneration). */
export function assertLlama4AcceptsImages(arch: ModelArch, model: string): void {
  if (arch.modelType === 'llama4' && arch.vision) return;
  throw new InputError(`model ${model}: is a text-only Llama 4 checkpoint (model_type llama4_text / Llama4ForCausalLM, no vision_config) but the task gives images; use a Llama4ForConditionalGeneration checkpoint such as tiny-llama-4-vision or llama-4-scout, or drop the image task`);
}

export interface Llama4Reference {
  arch: ModelArch;
  vision: Llama4VisionArch;
  processor: Llama4ProcessorConfig;
  get: TensorGetter;
  close(): void;
}

export function openLlama4Reference(dir: string, model = dir): Llama4Reference {
  const arch = readCheckpointArch(dir);
  assertLlama4AcceptsImages(arch, model);
  const vision = llama4VisionArch(arch.vision!);
  const { get, close } = cachedTensors(dir);
  return { arch, vision, processor: llama4ProcessorConfig(dir, vision.imageSize), get, close };
}

export interface Llama4EncodedImage {
  image: Llama4PreprocessedImage;
  /** One text-width embedding per <|patch|> token, tiles in order (the global tile last). */
  features: Float64Array[];
}

/** One image file -> its preprocessed tiles and projected features. */
export async function encodeLlama4Image(ref: Llama4Reference, bytes: Uint8Array, name: string): Promise<Llama4EncodedImage> {
  const image = await preprocessLlama4Image(bytes, name, ref.processor);
  return { image, features: llama4ImageEmbeddings(image.pixelValues, image.numTiles, ref.get, ref.vision, ref.arch.text.hiddenSize) };
}

/** The ids Llama4Processor puts in the text for an encoded image. */
export function llama4ImageBlock(ref: Llama4Reference, tokens: Llama4ImageTokens, encoded: Llama4EncodedImage): number[] {
  return llama4ImagePromptIds(tokens, encoded.image.aspectRatio, llama4TokensPerTile(ref.vision));
}
