// A Runner over the float64 TypeScript reference forward (runners/reference.ts): the oracle
// backend. It is slow (a full forward per request, no KV cache), so it suits tiny-* models and
// short prompts; its value is that every number it gives is the reference's own.
//
// Tokenization follows lm-evaluation-harness's HFLM: contexts are encoded without special
// tokens (its `add_bos_token=False` default), an empty context is replaced by BOS, and a
// (context, continuation) pair is encoded whole and split at the context's token count, after
// moving the context's trailing whitespace onto the continuation (`_encode_pair`).
import { openCheckpoint, type Checkpoint } from './hf/checkpoint.ts';
import { logSoftmax } from './reference-ops.ts';
import { projectorFor, referenceHidden, type CrossAttentionStates } from './reference.ts';
import { loadReferenceFromCheckpoint, type ReferenceModel } from './reference-weights.ts';
import { LlamaTokenizer } from './tokenizer.ts';
import { applyPeftToReference } from './peft/index.ts';
import { withVisualQuery } from './peft/visual.ts';
import { InputError } from '../results/errors.ts';
import { encodeOnce } from './vision/images.ts';
import { assertAcceptsImages, encodeImage, openMllamaReference, type MllamaReference } from './vision/mllama-checkpoint.ts';
import { crossAttentionTileMask, imageTokenId } from './vision/mllama-text.ts';
import { assertLlama4AcceptsImages, encodeLlama4Image, llama4ImageBlock, openLlama4Reference, type Llama4Reference } from './vision/llama4-checkpoint.ts';
import { llama4ImageTokens, patchEmbeddings, type Llama4ImageTokens } from './vision/llama4-text.ts';
import type {
  GenerateRequest, GenerateResult, LoglikelihoodRequest, LoglikelihoodResult, MemorySnapshot, Runner, RunnerInfo, ThroughputSnapshot,
} from './types.ts';

/** The token-level encoding of one loglikelihood request. */
export interface EncodedPair {
  context: number[];
  continuation: number[];
}

/**
 * lm-evaluation-harness `_encode_pair`: trailing whitespace of the context belongs to the
 * continuation (so " Paris" is scored as the tokenizer would see it in running text), and the
 * continuation's tokens are those of the whole string past the context's token count.
 */
export function encodePair(encode: (text: string) => number[], context: string, continuation: string): EncodedPair {
  const trimmed = context.trimEnd();
  const spaces = context.length - trimmed.length;
  const ctx = spaces > 0 ? trimmed : context;
  const cont = spaces > 0 ? context.slice(trimmed.length) + continuation : continuation;
  const whole = encode(ctx + cont);
  const contextIds = encode(ctx);
  return { context: contextIds, continuation: whole.slice(contextIds.length) };
}

export interface ReferenceRunnerOptions {
  offline?: boolean;
  env?: NodeJS.ProcessEnv;
  /** Mirrors HFLM's `add_bos_token`; default false as there. */
  addBos?: boolean;
  /**
   * `--peft` value: an HF PEFT adapter directory, or a spec string evaluated as PEFT initialises the
   * adapter (LoRA B = 0, adapter gates 0: the base model's outputs, except QLoRA's NF4 base).
   */
  peft?: string;
}

/** A LLaMA 4 request image (early fusion): the ids of its block in the text and its <|patch|> features. */
interface FusedImage {
  block: number[];
  features: Float64Array[];
}

export class ReferenceRunner implements Runner {
  readonly info: RunnerInfo;
  private readonly counters: ThroughputSnapshot = { prefillTokens: 0, prefillSeconds: 0, decodeTokens: 0, decodeSeconds: 0 };
  private readonly maxPositions: number;
  // Vision (issue 10): the mllama vision tower, opened at the first image, and each image's
  // projected tokens by content hash (a multiple-choice group repeats one image per choice).
  private vision: MllamaReference | null = null;
  private readonly encoded = new Map<string, { states: Float64Array[]; numTiles: number }>();
  // LLaMA 4 (issue 10): the vision tower and image token ids, opened at the first image, and each
  // image's block + features by content hash.
  private llama4: { ref: Llama4Reference; tokens: Llama4ImageTokens } | null = null;
  private readonly fused = new Map<string, FusedImage>();
  // PEFT (LLaMA-Adapter V2 visual path): the adapted model per encoded image.
  private readonly visualModels = new WeakMap<object, ReferenceModel>();

  constructor(
    readonly checkpoint: Checkpoint,
    private readonly model: ReferenceModel,
    private readonly tokenizer: LlamaTokenizer,
    private readonly addBos = false,
  ) {
    this.info = { backend: 'reference', device: 'cpu', dtype: 'float64', model: checkpoint.id, peft: model.peft?.label ?? null, versions: {} };
    const configured = checkpoint.config.max_position_embeddings;
    this.maxPositions = typeof configured === 'number' && configured > 0 ? configured : 2048;
  }

  /** Opens `model` (zoo id, tiny-* id, checkpoint dir or HF repo id) as OpenCheckpoint does. */
  static async open(model: string, options: ReferenceRunnerOptions = {}): Promise<ReferenceRunner> {
    const checkpoint = await openCheckpoint(model, { offline: options.offline, env: options.env });
    const tokenizer = LlamaTokenizer.fromDir(checkpoint.dir);
    let weights = loadReferenceFromCheckpoint(checkpoint);
    if (options.peft !== undefined) weights = applyPeftToReference(weights, options.peft, { mode: 'unmerged', init: 'zero' });
    return new ReferenceRunner(checkpoint, weights, tokenizer, options.addBos ?? false);
  }

  private encode = (text: string): number[] => this.tokenizer.encode(text, { addSpecialTokens: this.addBos });

  /** HFLM `prefix_token_id`: what conditions a continuation that has no context. */
  private prefixToken(): number {
    const id = this.tokenizer.bosTokenId ?? this.tokenizer.eosTokenId;
    if (id === null) throw new InputError(`${this.checkpoint.dir}: the tokenizer has neither a BOS nor an EOS token to condition an empty context on`);
    return id;
  }

  /**
   * The image of a request: null without one; otherwise (mllama only, one image) its projected
   * tokens, with <|image|> to put before the context as HF's "<|image|><|begin_of_text|>..." layout does.
   */
  private async imageOf(images: readonly Uint8Array[] | undefined): Promise<{ states: Float64Array[]; numTiles: number } | null> {
    if (images === undefined || images.length === 0) return null;
    assertAcceptsImages(this.checkpoint.arch, this.checkpoint.id);
    const hit = await encodeOnce(this.encoded, images, { backend: 'reference', model: this.checkpoint.id }, async (bytes, name) => {
      this.vision ??= openMllamaReference(this.checkpoint.dir);
      const { image, states } = await encodeImage(this.vision, bytes, name);
      return { states, numTiles: image.numTiles };
    });
    return hit!.value;
  }

  /**
   * The image of a request to a LLaMA 4 model: null without one; otherwise (one image) the block of
   * ids Llama4Processor puts in the text for it, to go before the context as for mllama, and the
   * projected features that replace its <|patch|> embeddings.
   */
  private async fusedImageOf(images: readonly Uint8Array[] | undefined): Promise<FusedImage | null> {
    if (images === undefined || images.length === 0) return null;
    assertLlama4AcceptsImages(this.checkpoint.arch, this.checkpoint.id);
    const hit = await encodeOnce(this.fused, images, { backend: 'reference', model: this.checkpoint.id }, async (bytes, name) => {
      this.llama4 ??= {
        ref: openLlama4Reference(this.checkpoint.dir, this.checkpoint.id),
        tokens: llama4ImageTokens((t) => this.tokenizer.encode(t, { addSpecialTokens: false }), this.checkpoint.config, this.checkpoint.id),
      };
      const encoded = await encodeLlama4Image(this.llama4.ref, bytes, name);
      return { block: llama4ImageBlock(this.llama4.ref, this.llama4.tokens, encoded), features: encoded.features };
    });
    return hit!.value;
  }

  /** The cross-attention input for `ids` (which hold the <|image|> token) and an encoded image. */
  private crossStates(ids: readonly number[], image: { states: Float64Array[]; numTiles: number } | null): CrossAttentionStates | undefined {
    if (!image) return undefined;
    const maxTiles = this.vision!.vision.maxNumTiles;
    const tileMask = crossAttentionTileMask(ids, imageTokenId(this.checkpoint.config), image.numTiles, maxTiles);
    return { states: image.states, mask: { tokensPerTile: image.states.length / maxTiles, tileMask } };
  }

  /**
   * PEFT: with LLaMA-Adapter V2's visual path, the model whose adaption prompts hold this image's
   * visual query, from the projected tokens of its real tiles (runners/peft/visual.ts); else the model.
   */
  private visualModel(image: { states: Float64Array[]; numTiles: number } | null): ReferenceModel {
    if (!image || !this.model.peft?.visual) return this.model;
    let model = this.visualModels.get(image);
    if (!model) {
      const tokensPerTile = image.states.length / this.vision!.vision.maxNumTiles;
      this.visualModels.set(image, (model = withVisualQuery(this.model, image.states.slice(0, image.numTiles * tokensPerTile))));
    }
    return model;
  }

  /** log-softmax rows at `positions` of the forward over `ids` (lm_head only where needed). */
  private logprobRows(ids: readonly number[], positions: readonly number[], image: { states: Float64Array[]; numTiles: number } | null = null, fused: FusedImage | null = null): Float64Array[] {
    const embeds = fused ? patchEmbeddings(ids, this.llama4!.tokens.patch, fused.features) : undefined;
    const model = this.visualModel(image);
    const hidden = referenceHidden(model, ids, this.crossStates(ids, image), embeds);
    const t = model.text;
    // PEFT hook: lm_head through the projector, so a LoRA on lm_head counts here too.
    const project = projectorFor(model.peft);
    return positions.map((p) => logSoftmax(project('lm_head', model.lmHead, hidden[p]!, t.vocabSize, t.hiddenSize)));
  }

  async *loglikelihood(reqs: readonly LoglikelihoodRequest[]): AsyncIterable<LoglikelihoodResult> {
    // Multiple-choice groups repeat one context: encode it once. (The reference forward has no
    // KV cache, so the prefill itself is recomputed per choice.)
    const contextCache = new Map<string, number[]>();
    for (const r of reqs) {
      const start = performance.now();
      const llama4 = this.checkpoint.arch.modelType === 'llama4';
      const image = llama4 ? null : await this.imageOf(r.images);
      const fused = llama4 ? await this.fusedImageOf(r.images) : null;
      let pair: EncodedPair;
      if (r.context === '') {
        pair = { context: [this.prefixToken()], continuation: this.tokenizer.encode(r.continuation, { addSpecialTokens: false }) };
      } else {
        const encode = (text: string): number[] => {
          if (text !== r.context.trimEnd()) return this.encode(text);
          let ids = contextCache.get(text);
          if (!ids) contextCache.set(text, (ids = this.encode(text)));
          return ids;
        };
        pair = encodePair(encode, r.context, r.continuation);
      }
      if (pair.continuation.length === 0) {
        yield { logprob: 0, isGreedy: true, tokens: 0 };
        continue;
      }
      // Left-truncate to the model's context window, as HFLM does: the input is all but the last
      // token, so max_length + 1 tokens of context+continuation fit.
      const imagePrefix = image ? [imageTokenId(this.checkpoint.config)] : (fused?.block ?? []);
      const all = [...imagePrefix, ...pair.context, ...pair.continuation].slice(-(this.maxPositions + 1));
      const input = all.slice(0, -1);
      const n = pair.continuation.length;
      const positions = Array.from({ length: n }, (_, i) => input.length - n + i);
      const rows = this.logprobRows(input, positions, image, fused);
      let logprob = 0;
      let isGreedy = true;
      rows.forEach((row, i) => {
        const target = pair.continuation[i]!;
        logprob += row[target]!;
        if (argmax(row) !== target) isGreedy = false;
      });
      this.counters.prefillTokens += input.length;
      this.counters.prefillSeconds += (performance.now() - start) / 1000;
      yield { logprob, isGreedy, tokens: n };
    }
  }

  async *generate(reqs: readonly GenerateRequest[]): AsyncIterable<GenerateResult> {
    const eos = new Set<number>();
    const configuredEos = this.checkpoint.config.eos_token_id;
    for (const id of Array.isArray(configuredEos) ? configuredEos : [configuredEos]) if (typeof id === 'number') eos.add(id);
    if (this.tokenizer.eosTokenId !== null) eos.add(this.tokenizer.eosTokenId);
    for (const r of reqs) {
      const llama4 = this.checkpoint.arch.modelType === 'llama4';
      const image = llama4 ? null : await this.imageOf(r.images);
      const fused = llama4 ? await this.fusedImageOf(r.images) : null;
      const imagePrefix = image ? [imageTokenId(this.checkpoint.config)] : (fused?.block ?? []);
      const ids = [...imagePrefix, ...(r.context === '' ? [this.prefixToken()] : this.encode(r.context))];
      const generated: number[] = [];
      let text = '';
      for (let step = 0; step < r.maxTokens; step++) {
        const start = performance.now();
        const input = ids.slice(-this.maxPositions);
        const [row] = this.logprobRows(input, [input.length - 1], image, fused);
        const next = argmax(row!);
        const seconds = (performance.now() - start) / 1000;
        if (step === 0) {
          this.counters.prefillTokens += input.length;
          this.counters.prefillSeconds += seconds;
        } else {
          this.counters.decodeTokens += 1;
          this.counters.decodeSeconds += seconds;
        }
        generated.push(next);
        if (eos.has(next)) break;
        ids.push(next);
        text = this.tokenizer.decode(generated, { skipSpecialTokens: true });
        if (firstStop(text, r.until) >= 0) break;
      }
      const stop = firstStop(text, r.until);
      yield { text: stop >= 0 ? text.slice(0, stop) : text, tokens: generated.length };
    }
  }

  memory(): MemorySnapshot {
    // maxRSS is in kilobytes (getrusage ru_maxrss on Linux); the reference holds everything in JS heap.
    return { peakRssBytes: process.resourceUsage().maxRSS * 1024, arenaBytes: null, deviceBytes: null, kvCacheBytes: null };
  }

  throughput(): ThroughputSnapshot {
    return { ...this.counters };
  }

  async close(): Promise<void> {
    this.vision?.close();
    this.vision = null;
    this.llama4?.ref.close();
    this.llama4 = null;
  }
}

function argmax(row: Float64Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

/** Offset of the earliest stop string in `text`, or -1. */
export function firstStop(text: string, until: readonly string[]): number {
  let at = -1;
  for (const stop of until) {
    if (stop === '') continue;
    const i = text.indexOf(stop);
    if (i >= 0 && (at < 0 || i < at)) at = i;
  }
  return at;
}
