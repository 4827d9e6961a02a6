// `--image <file>` of `llama-eval logprobs` and `generate` on LLaMA 3.2 Vision (mllama): reading the
// file, refusing it for other models, the `<|image|>` placement (before the text, as the runners and
// HF's "<|image|><|begin_of_text|>..." base-model prompt put it), and the reference backend's image
// input (projected states + HF's tile mask, and LLaMA-Adapter V2's visual query when --peft has one).
import { readFileSync } from 'node:fs';
import { InputError } from '../errors.ts';
import type { Checkpoint } from '../../runners/hf/checkpoint.ts';
import type { OrtMllamaRunner } from '../../runners/ort/mllama-runner.ts';
import type { CrossAttentionStates } from '../../runners/reference.ts';
import type { ReferenceModel } from '../../runners/reference-weights.ts';
import type { LlamaTokenizer } from '../../runners/tokenizer.ts';
import { imageTokenId } from '../../runners/vision/mllama-text.ts';

/** The bytes of `--image`, or null without it; an unreadable path is an input error. */
export function readImageArg(arg: unknown): Uint8Array | null {
  if (arg === undefined) return null;
  const path = String(arg);
  try {
    return new Uint8Array(readFileSync(path));
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new InputError(`--image ${path}: cannot read the file (${why}); give the path of a PNG, JPEG, WebP, GIF or TIFF image`);
  }
}

export function isMllama(checkpoint: Checkpoint): boolean {
  return checkpoint.arch.modelType === 'mllama' && checkpoint.arch.vision !== null;
}

/** Throws unless `checkpoint` takes `--image` (LLaMA 3.2 Vision; LLaMA 4 vision where `llama4` says the command reads it). */
export function assertImageModel(checkpoint: Checkpoint, options: { llama4?: boolean } = {}): void {
  if (isMllama(checkpoint)) return;
  const { modelType, vision } = checkpoint.arch;
  if (options.llama4 === true && modelType === 'llama4' && vision !== null) return;
  if (vision !== null) throw new InputError(`--image: model ${checkpoint.id} (model_type ${modelType}) takes images, but this command reads them for LLaMA 3.2 Vision (mllama) models only; use tiny-llama-3.2-vision or drop --image`);
  throw new InputError(`--image: model ${checkpoint.id} is text-only (model_type ${modelType}, no vision_config); use a LLaMA 3.2 Vision model such as tiny-llama-3.2-vision, or drop --image`);
}

/** `ids` with <|image|> first, unless the caller already placed it (then as given). */
export function withImageToken(checkpoint: Checkpoint, ids: readonly number[]): number[] {
  const token = imageTokenId(checkpoint.config);
  return ids.includes(token) ? [...ids] : [token, ...ids];
}

/** The ORT runner of an mllama checkpoint (onnxruntime is imported only here). */
export async function openMllamaRunner(checkpoint: Checkpoint, peft: string | undefined, options: { device?: 'cpu' | 'cuda'; tokenizer?: LlamaTokenizer | null } = {}): Promise<OrtMllamaRunner> {
  const { OrtMllamaRunner } = await import('../../runners/ort/mllama-runner.ts');
  return OrtMllamaRunner.open(checkpoint, { device: options.device ?? 'cpu', peft, tokenizer: options.tokenizer ?? undefined });
}

/** The reference backend's image: the model to run (V2 visual query added) and the input for given ids. */
export interface ReferenceImage {
  model: ReferenceModel;
  input(ids: readonly number[]): CrossAttentionStates;
}

export async function referenceImage(checkpoint: Checkpoint, model: ReferenceModel, bytes: Uint8Array, name: string): Promise<ReferenceImage> {
  const [{ encodeImage, openMllamaReference }, { crossAttentionTileMask }, { withVisualQuery }] = await Promise.all([
    import('../../runners/vision/mllama-checkpoint.ts'),
    import('../../runners/vision/mllama-text.ts'),
    import('../../runners/peft/visual.ts'),
  ]);
  const ref = openMllamaReference(checkpoint.dir);
  try {
    const { image, states } = await encodeImage(ref, bytes, name);
    const tiles = ref.vision.maxNumTiles;
    const tokensPerTile = states.length / tiles;
    const token = imageTokenId(checkpoint.config);
    return {
      // As the reference runner: the visual query from the projected tokens of the real tiles.
      model: withVisualQuery(model, states.slice(0, image.numTiles * tokensPerTile)),
      input: (ids) => ({ states, mask: { tokensPerTile, tileMask: crossAttentionTileMask(ids, token, image.numTiles, tiles) } }),
    };
  } finally {
    ref.close();
  }
}
