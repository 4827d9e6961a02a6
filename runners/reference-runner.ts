// A Runner over the float64 TypeScript reference forward (runners/reference.ts): the oracle
// backend. It is slow (a full forward per request, no KV cache), so it suits tiny-* models and
// short prompts; its value is that every number it gives is the reference's own.
//
// Tokenization follows lm-evaluation-harness's HFLM: contexts are encoded without special
// tokens (its `add_bos_token=False` default), an empty context is replaced by BOS, and a
// (context, continuation) pair is encoded whole and split at the context's token count, after
// moving the context's trailing whitespace onto the continuation (`_encode_pair`).
import { openCheckpoint, type Checkpoint } from './hf/checkpoint.ts';
import { linear, logSoftmax } from './reference-ops.ts';
import { referenceHidden, type CrossAttentionStates } from './reference.ts';
import { loadReferenceFromCheckpoint, type ReferenceModel } from './reference-weights.ts';
import { LlamaTokenizer } from './tokenizer.ts';
import { applyPeftToReference } from './peft/index.ts';
import { InputError } from '../results/errors.ts';
import { createHash } from 'node:crypto';
import { assertAcceptsImages, encodeImage, openMllamaReference, type MllamaReference } from './vision/mllama-checkpoint.ts';
import { crossAttentionTileMask, imageTokenId } from './vision/mllama-text.ts';
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

export class ReferenceRunner implements Runner {
  readonly info: RunnerInfo;
  private readonly counters: ThroughputSnapshot = { prefillTokens: 0, prefillSeconds: 0, decodeTokens: 0, decodeSeconds: 0 };
  private readonly maxPositions: number;
  // Vision (issue 10): the mllama vision tower, opened at the first image, and each image's
  // projected tokens by content hash (a multiple-choice group repeats one image per choice).
  private vision: MllamaReference | null = null;
  private readonly encoded = new Map<string, { states: Float64Array[]; numTiles: number }>();

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
    if (options.peft !== undefined && checkpoint.arch.modelType === 'mllama') {
      throw new InputError(`model ${model}: --peft on an mllama (LLaMA 3.2 Vision) model is not supported by the reference backend yet; drop --peft`);
    }
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
    if (images.length > 1) throw new InputError(`model ${this.checkpoint.id}: the reference backend takes one image per request, the task gives ${images.length}; use a single-image task`);
    const bytes = images[0]!;
    const key = createHash('sha256').update(bytes).digest('hex');
    let hit = this.encoded.get(key);
    if (!hit) {
      this.vision ??= openMllamaReference(this.checkpoint.dir);
      const { image, states } = await encodeImage(this.vision, bytes, `request image (sha256 ${key.slice(0, 12)})`);
      this.encoded.set(key, (hit = { states, numTiles: image.numTiles }));
    }
    return hit;
  }

  /** The cross-attention input for `ids` (which hold the <|image|> token) and an encoded image. */
  private crossStates(ids: readonly number[], image: { states: Float64Array[]; numTiles: number } | null): CrossAttentionStates | undefined {
    if (!image) return undefined;
    const maxTiles = this.vision!.vision.maxNumTiles;
    const tileMask = crossAttentionTileMask(ids, imageTokenId(this.checkpoint.config), image.numTiles, maxTiles);
    return { states: image.states, mask: { tokensPerTile: image.states.length / maxTiles, tileMask } };
  }

  /** log-softmax rows at `positions` of the forward over `ids` (lm_head only where needed). */
  private logprobRows(ids: readonly number[], positions: readonly number[], image: { states: Float64Array[]; numTiles: number } | null = null): Float64Array[] {
    const hidden = referenceHidden(this.model, ids, this.crossStates(ids, image));
    const t = this.model.text;
    return positions.map((p) => logSoftmax(linear(this.model.lmHead, hidden[p]!, t.vocabSize, t.hiddenSize)));
  }

  async *loglikelihood(reqs: readonly LoglikelihoodRequest[]): AsyncIterable<LoglikelihoodResult> {
    // Multiple-choice groups repeat one context: encode it once. (The reference forward has no
    // KV cache, so the prefill itself is recomputed per choice.)
    const contextCache = new Map<string, number[]>();
    for (const r of reqs) {
      const start = performance.now();
      const image = await this.imageOf(r.images);
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
      const imagePrefix = image ? [imageTokenId(this.checkpoint.config)] : [];
      const all = [...imagePrefix, ...pair.context, ...pair.continuation].slice(-(this.maxPositions + 1));
      const input = all.slice(0, -1);
      const n = pair.continuation.length;
      const positions = Array.from({ length: n }, (_, i) => input.length - n + i);
      const rows = this.logprobRows(input, positions, image);
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
      const image = await this.imageOf(r.images);
      const ids = [...(image ? [imageTokenId(this.checkpoint.config)] : []), ...(r.context === '' ? [this.prefixToken()] : this.encode(r.context))];
      const generated: number[] = [];
      let text = '';
      for (let step = 0; step < r.maxTokens; step++) {
        const start = performance.now();
        const input = ids.slice(-this.maxPositions);
        const [row] = this.logprobRows(input, [input.length - 1], image);
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
