// LLaMA 4 with images (Llama4ForConditionalGeneration) in two ORT sessions: the vision tower +
// adapter + projector (llama4-vision-graph.ts) turns one preprocessed image into the rows that
// replace its `<|patch|>` embeddings, and the text model (llama4-text-graph.ts, the LLaMA graph
// with early fusion) reads them. Batch 1; the text session keeps a KV cache, so the features are
// fed only with the tokens that hold the patches (the prefill).
import type { ModelArch } from '../arch.ts';
import { InputError } from '../../results/errors.ts';
import type { TensorSource } from '../reference-weights.ts';
import { CheckpointWeights } from '../hf/weights.ts';
import { openLlama4Reference, type Llama4Reference } from '../vision/llama4-checkpoint.ts';
import { preprocessLlama4Image, type Llama4PreprocessedImage } from '../vision/llama4-preprocess.ts';
import { llama4TokensPerTile } from '../vision/llama4-reference.ts';
import { pastKeyName, pastValueName, presentKeyName, presentValueName } from './llama-graph.ts';
import type { KvCache } from './llama-model.ts';
import { buildLlama4TextGraph, IMAGE_FEATURES_INPUT } from './llama4-text-graph.ts';
import { buildLlama4VisionGraph, IMAGE_FEATURES_OUTPUT, PIXEL_VALUES_INPUT } from './llama4-vision-graph.ts';
import { OrtSession, type Feed, type OrtDevice, type SessionOptions } from './session.ts';

/** One image through the vision session. */
export interface Llama4OrtImage {
  image: Llama4PreprocessedImage;
  /** [numTiles * tokensPerTile, text hidden] row-major: the `<|patch|>` rows in order. */
  features: Float32Array;
}

export interface Llama4Forward {
  /** New token ids. */
  ids: readonly number[];
  past: KvCache;
  /** Rows [n, hidden] for the n `<|patch|>` tokens among `ids`, in order; null when there are none. */
  features: Float32Array | null;
  /** Positions (0-based among `ids`) whose logits are returned, in this order. */
  rows: readonly number[];
}

export class OrtLlama4Model {
  private constructor(
    readonly ref: Pick<Llama4Reference, 'arch' | 'vision' | 'processor'>,
    readonly patchToken: number,
    private readonly visionSession: OrtSession,
    private readonly textSession: OrtSession,
  ) {}

  get arch(): ModelArch {
    return this.ref.arch;
  }

  get device(): OrtDevice {
    return this.textSession.device;
  }

  get tokensPerTile(): number {
    return llama4TokensPerTile(this.ref.vision);
  }

  /** Builds both graphs from a checkpoint directory (vision weights read once, then dropped). */
  static async fromDir(dir: string, rawConfig: Record<string, unknown>, model: string, options: SessionOptions = {}): Promise<OrtLlama4Model> {
    const ref = openLlama4Reference(dir, model);
    const weights = CheckpointWeights.open(dir);
    try {
      return await OrtLlama4Model.create(ref, rawConfig, weights, options);
    } finally {
      weights.close();
      ref.close();
    }
  }

  /**
   * Builds both graphs: vision tensors from `ref.get`, text tensors from `text` (checkpoint names,
   * `language_model.*`); tests pass modified weights through both.
   */
  static async create(ref: Pick<Llama4Reference, 'arch' | 'vision' | 'processor' | 'get'>, rawConfig: Record<string, unknown>, text: TensorSource, options: SessionOptions = {}): Promise<OrtLlama4Model> {
    const patchToken = rawConfig.image_token_index;
    if (typeof patchToken !== 'number') throw new InputError('config.json: a Llama 4 vision checkpoint needs image_token_index (the <|patch|> id)');
    const visionSession = await OrtSession.create(buildLlama4VisionGraph(ref.arch, ref.get), options);
    try {
      const textSession = await OrtSession.create(buildLlama4TextGraph(ref.arch, rawConfig, text, patchToken), options);
      return new OrtLlama4Model({ arch: ref.arch, vision: ref.vision, processor: ref.processor }, patchToken, visionSession, textSession);
    } catch (error) {
      await visionSession.close();
      throw error;
    }
  }

  /** Decode + preprocess (Llama4ImageProcessorFast) + vision tower + projector for one image file. */
  async encodeImage(bytes: Uint8Array, name: string): Promise<Llama4OrtImage> {
    const image = await preprocessLlama4Image(bytes, name, this.ref.processor);
    return { image, features: await this.encodePixels(image.pixelValues, image.numTiles) };
  }

  /** The vision session on (numTiles, C, S, S) pixel values. */
  async encodePixels(pixelValues: ArrayLike<number>, numTiles: number): Promise<Float32Array> {
    const v = this.ref.vision;
    const out = await this.visionSession.run({ [PIXEL_VALUES_INPUT]: { data: Float32Array.from(pixelValues), dims: [numTiles, v.numChannels, v.imageSize, v.imageSize] } });
    return out[IMAGE_FEATURES_OUTPUT]!.data as Float32Array;
  }

  emptyCache(): KvCache {
    const n = this.arch.text.numLayers;
    return { batch: 1, length: 0, keys: Array.from({ length: n }, () => new Float32Array(0)), values: Array.from({ length: n }, () => new Float32Array(0)) };
  }

  /** Logits [rows.length, vocab] and the cache extended by `ids`. */
  async forward(f: Llama4Forward): Promise<{ logits: Float32Array; present: KvCache }> {
    const t = this.arch.text;
    const s = f.ids.length;
    if (s === 0) throw new RangeError('llama4 forward: no tokens');
    for (const id of f.ids) if (!Number.isInteger(id) || id < 0 || id >= t.vocabSize) throw new RangeError(`token id ${id} is outside the vocabulary [0, ${t.vocabSize})`);
    for (const r of f.rows) if (!Number.isInteger(r) || r < 0 || r >= s) throw new RangeError(`llama4 forward: logits row ${r} is outside the ${s} new tokens`);
    const patches = f.ids.filter((id) => id === this.patchToken).length;
    const rows = f.features ? f.features.length / t.hiddenSize : 0;
    // HF raises the same way ("Image features and image tokens do not match").
    if (rows !== patches) throw new InputError(`image features and image tokens do not match: ${patches} <|patch|> tokens among the new tokens, ${rows} feature rows`);
    const total = f.past.length + s;
    const feeds: Record<string, Feed> = {
      input_ids: { data: BigInt64Array.from(f.ids, BigInt), dims: [1, s] },
      attention_mask: { data: new BigInt64Array(total).fill(1n), dims: [1, total] },
      position_ids: { data: BigInt64Array.from(f.ids, (_, i) => BigInt(f.past.length + i)), dims: [1, s] },
      logits_indices: { data: BigInt64Array.from(f.rows, BigInt), dims: [1, f.rows.length] },
      // Text only: one zero row that no token selects.
      [IMAGE_FEATURES_INPUT]: f.features && rows > 0 ? { data: f.features, dims: [rows, t.hiddenSize] } : { data: new Float32Array(t.hiddenSize), dims: [1, t.hiddenSize] },
    };
    const kvDims = [1, t.numKvHeads, f.past.length, t.headDim];
    for (let i = 0; i < t.numLayers; i++) {
      feeds[pastKeyName(i)] = { data: f.past.keys[i]!, dims: kvDims };
      feeds[pastValueName(i)] = { data: f.past.values[i]!, dims: kvDims };
    }
    const out = await this.textSession.run(feeds);
    const layers = Array.from({ length: t.numLayers }, (_, i) => i);
    return {
      logits: out.logits!.data as Float32Array,
      present: {
        batch: 1,
        length: total,
        keys: layers.map((i) => out[presentKeyName(i)]!.data as Float32Array),
        values: layers.map((i) => out[presentValueName(i)]!.data as Float32Array),
      },
    };
  }

  async close(): Promise<void> {
    await this.visionSession.close();
    await this.textSession.close();
  }
}
