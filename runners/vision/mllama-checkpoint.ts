// Opens an mllama (LLaMA 3.2 Vision) checkpoint directory for the float64 vision reference and runs
// image -> preprocessing -> vision tower -> projector, giving the cross-attention states the text
// model's cross-attention layers read. Also the one guard every image path shares: a text-only
// model refuses images with a clear error.
import type { ModelArch } from '../arch.ts';
import { InputError } from '../../results/errors.ts';
import { cachedTensors, readCheckpointArch } from './checkpoint.ts';
import type { CrossAttentionArch } from './mllama-cross-attention.ts';
import { LLAMA_32_VISION_PROCESSOR, preprocessImage, type MllamaProcessorConfig, type PreprocessedImage } from './mllama-preprocess.ts';
import { mllamaProject, mllamaVisionArch, mllamaVisionForward, type MllamaVisionArch, type TensorGetter } from './mllama-reference.ts';

/** Throws unless `arch` takes images through the mllama path implemented here. */
export function assertAcceptsImages(arch: ModelArch, model: string): void {
  if (arch.modelType === 'mllama' && arch.vision) return;
  if (arch.modelType === 'llama4' && arch.vision) {
    throw new InputError(`model ${model}: is a LLaMA 4 vision model, which this LLaMA 3.2 Vision (mllama) path does not take; LLaMA 4 images run on --backend reference`);
  }
  throw new InputError(`model ${model}: is text-only (model_type ${arch.modelType}, no vision_config) but the task gives images; choose a vision model such as tiny-llama-3.2-vision or drop the image task`);
}

export interface MllamaReference {
  arch: ModelArch;
  vision: MllamaVisionArch;
  cross: CrossAttentionArch;
  processor: MllamaProcessorConfig;
  get: TensorGetter;
  close(): void;
}

export function openMllamaReference(dir: string): MllamaReference {
  const arch = readCheckpointArch(dir);
  assertAcceptsImages(arch, dir);
  const vision = mllamaVisionArch(arch.vision!);
  const { get, close } = cachedTensors(dir);
  const t = arch.text;
  return {
    arch,
    vision,
    cross: { hiddenSize: t.hiddenSize, numHeads: t.numHeads, numKvHeads: t.numKvHeads, intermediateSize: t.intermediateSize, rmsNormEps: t.rmsNormEps },
    // MllamaImageProcessor tiles at the vision tower's image_size, up to max_num_tiles; CLIP mean/std.
    processor: { ...LLAMA_32_VISION_PROCESSOR, tileSize: vision.imageSize, maxImageTiles: vision.maxNumTiles },
    get,
    close,
  };
}

/** One image file -> (max_num_tiles * patches per tile) cross-attention states of the text width. */
export async function encodeImage(ref: MllamaReference, bytes: Uint8Array, name: string): Promise<{ image: PreprocessedImage; states: Float64Array[] }> {
  const image = await preprocessImage(bytes, name, ref.processor);
  const out = mllamaVisionForward(image, ref.get, ref.vision);
  return { image, states: mllamaProject(out, ref.get, ref.vision.visionOutputDim, ref.arch.text.hiddenSize) };
}
