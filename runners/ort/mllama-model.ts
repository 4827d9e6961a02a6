// LLaMA 3.2 Vision (mllama) in two ORT sessions: the vision tower + projector
// (mllama-vision-graph.ts) turns one preprocessed image into cross-attention states, and the text
// model (mllama-text-graph.ts) reads them in its cross-attention layers. The text session keeps a
// KV cache for its self-attention layers; cross-attention K/V are recomputed from the states on
// every call (they are a few projections of max_num_tiles * patches rows).
import type { ModelArch } from '../arch.ts';
import { InputError } from '../../results/errors.ts';
import { openMllamaReference, type MllamaReference } from '../vision/mllama-checkpoint.ts';
import { preprocessImage, type MllamaProcessorConfig, type PreprocessedImage } from '../vision/mllama-preprocess.ts';
import type { MllamaVisionArch } from '../vision/mllama-reference.ts';
import { pastKeyName, pastValueName, presentKeyName, presentValueName } from './llama-graph.ts';
import type { LlamaGraphPeft } from './llama-graph.ts';
import type { KvCache } from './llama-model.ts';
import { buildMllamaTextGraph, mllamaSelfLayers } from './mllama-text-graph.ts';
import { buildMllamaVisionGraph, mllamaVisionShape, type MllamaVisionShape } from './mllama-vision-graph.ts';
import { OrtSession, type Feed, type OrtDevice, type SessionOptions } from './session.ts';

/** One image through the vision session: its cross-attention states and how many tiles are real. */
export interface EncodedImage {
  /** [tokens, hidden] row-major. */
  states: Float32Array;
  numTiles: number;
}

export interface MllamaForward {
  /** New token ids (the <|image|> id included where the prompt has it). */
  ids: readonly number[];
  past: KvCache;
  /** The image and, per new token, HF's tile mask (max_num_tiles entries of 0/1); null: text only. */
  image: { encoded: EncodedImage; tileMask: readonly (readonly number[])[] } | null;
  /** Positions (0-based among `ids`) whose logits are returned, in this order. */
  rows: readonly number[];
  /** PEFT feeds that replace the model's own for this run (V2 visual prompts of this image). */
  peftFeeds?: Record<string, Feed>;
}

/** `--peft` on the text graph (mllama-peft.ts): the graph hook and its adapter tensors. */
export interface MllamaGraphPeft {
  graph: LlamaGraphPeft;
  feeds: Record<string, Feed>;
}

export class OrtMllamaModel {
  private readonly selfLayers: number[];

  private constructor(
    readonly arch: ModelArch,
    readonly vision: MllamaVisionArch,
    readonly shape: MllamaVisionShape,
    readonly processor: MllamaProcessorConfig,
    private readonly visionSession: OrtSession,
    private readonly textSession: OrtSession,
    private readonly peftFeeds: Record<string, Feed>,
  ) {
    this.selfLayers = mllamaSelfLayers(arch);
  }

  /** Builds both graphs from the checkpoint directory (weights read once, then dropped). */
  static async fromDir(dir: string, options: SessionOptions = {}): Promise<OrtMllamaModel> {
    const ref = openMllamaReference(dir);
    try {
      return await OrtMllamaModel.create(ref, options);
    } finally {
      ref.close();
    }
  }

  /** Builds both graphs with the tensors `source.get` gives (HF names), e.g. modified weights in tests. */
  static async create(source: Pick<MllamaReference, 'arch' | 'vision' | 'processor' | 'get'>, options: SessionOptions = {}, peft?: MllamaGraphPeft): Promise<OrtMllamaModel> {
    const shape = mllamaVisionShape(source.vision);
    const visionSession = await OrtSession.create(buildMllamaVisionGraph(source.arch, source.get), options);
    try {
      const textSession = await OrtSession.create(buildMllamaTextGraph(source.arch, source.get, shape.tokens, shape.tiles, peft?.graph), options);
      return new OrtMllamaModel(source.arch, source.vision, shape, source.processor, visionSession, textSession, peft?.feeds ?? {});
    } catch (error) {
      await visionSession.close();
      throw error;
    }
  }

  get device(): OrtDevice {
    return this.textSession.device;
  }

  /** Decode + preprocess (MllamaImageProcessor) + vision tower + projector for one image file. */
  async encodeImage(bytes: Uint8Array, name: string): Promise<EncodedImage> {
    return this.encodePreprocessed(await preprocessImage(bytes, name, this.processor));
  }

  async encodePreprocessed(image: PreprocessedImage): Promise<EncodedImage> {
    const { tiles } = this.shape;
    const S = this.vision.imageSize;
    const out = await this.visionSession.run({
      pixel_values: { data: Float32Array.from(image.pixelValues), dims: [1, tiles, this.vision.numChannels, S, S] },
      aspect_ratio_ids: { data: BigInt64Array.of(BigInt(image.aspectRatioId)), dims: [1] },
      aspect_ratio_mask: { data: BigInt64Array.from(image.aspectRatioMask, BigInt), dims: [1, tiles] },
    });
    return { states: out.cross_attention_states!.data as Float32Array, numTiles: image.numTiles };
  }

  emptyCache(): KvCache {
    const n = this.arch.text.numLayers;
    return { batch: 1, length: 0, keys: Array.from({ length: n }, () => new Float32Array(0)), values: Array.from({ length: n }, () => new Float32Array(0)) };
  }

  /** Logits [rows.length, vocab] and the cache extended by `ids` (cross-attention layers' slots stay empty). */
  async forward(f: MllamaForward): Promise<{ logits: Float32Array; present: KvCache }> {
    const t = this.arch.text;
    const s = f.ids.length;
    if (s === 0) throw new RangeError('mllama forward: no tokens');
    const rows = t.vocabSize + t.extraEmbeddingRows;
    for (const id of f.ids) if (!Number.isInteger(id) || id < 0 || id >= rows) throw new RangeError(`token id ${id} is outside the vocabulary [0, ${rows})`);
    for (const r of f.rows) if (!Number.isInteger(r) || r < 0 || r >= s) throw new RangeError(`mllama forward: logits row ${r} is outside the ${s} new tokens`);
    const { tiles, tokens } = this.shape;
    if (f.image && f.image.tileMask.length !== s) throw new InputError(`cross-attention mask: ${f.image.tileMask.length} rows for ${s} text tokens`);
    const feeds: Record<string, Feed> = {
      ...this.peftFeeds,
      ...f.peftFeeds,
      input_ids: { data: BigInt64Array.from(f.ids, BigInt), dims: [1, s] },
      position_ids: { data: BigInt64Array.from(f.ids, (_, i) => BigInt(f.past.length + i)), dims: [1, s] },
      // Text only: zero states and no visible tile make every cross-attention layer the identity.
      cross_attention_states: { data: f.image?.encoded.states ?? new Float32Array(tokens * t.hiddenSize), dims: [tokens, t.hiddenSize] },
      cross_attention_mask: { data: f.image ? Float32Array.from(f.image.tileMask.flat()) : new Float32Array(s * tiles), dims: [s, tiles] },
      logits_indices: { data: BigInt64Array.from(f.rows, BigInt), dims: [f.rows.length] },
    };
    const kvDims = [1, t.numKvHeads, f.past.length, t.headDim];
    for (const i of this.selfLayers) {
      feeds[pastKeyName(i)] = { data: f.past.keys[i]!, dims: kvDims };
      feeds[pastValueName(i)] = { data: f.past.values[i]!, dims: kvDims };
    }
    const out = await this.textSession.run(feeds);
    const present: KvCache = { ...this.emptyCache(), length: f.past.length + s };
    for (const i of this.selfLayers) {
      present.keys[i] = out[presentKeyName(i)]!.data as Float32Array;
      present.values[i] = out[presentValueName(i)]!.data as Float32Array;
    }
    return { logits: out.logits!.data as Float32Array, present };
  }

  async close(): Promise<void> {
    await this.visionSession.close();
    await this.textSession.close();
  }
}
