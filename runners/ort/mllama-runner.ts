// The ORT runner of LLaMA 3.2 Vision (mllama): image + text requests through the vision and text
// graphs (mllama-model.ts), behind the Runner contract. Prompt layout and tokenization are the
// reference runner's (runners/reference-runner.ts: `<|image|>` before the context as HF's
// "<|image|><|begin_of_text|>..." base-model prompt, HFLM `_encode_pair`, left truncation), so the
// two backends score the same token sequences; test/e2e/vision-run.test.ts holds them to the same
// per-sample scores.
//
// Caching: each image is encoded once (by content hash); a loglikelihood request reuses the KV
// cache of the previous request's prefill when its prefix (image + context) is the same (a
// multiple-choice question), then feeds its continuation from that cache; greedy generation
// decodes token by token from the cache. Batch 1 throughout (no padded batches).
import { createHash } from 'node:crypto';
import { InputError } from '../../results/errors.ts';
import type { Checkpoint } from '../hf/checkpoint.ts';
import { encodePair, firstStop, type EncodedPair } from '../reference-runner.ts';
import { LlamaTokenizer } from '../tokenizer.ts';
import { loadReferenceFromCheckpoint } from '../reference-weights.ts';
import { assertAcceptsImages, openMllamaReference } from '../vision/mllama-checkpoint.ts';
import { crossAttentionTileMask, imageTokenId } from '../vision/mllama-text.ts';
import type {
  GenerateRequest, GenerateResult, LoglikelihoodRequest, LoglikelihoodResult, MemorySnapshot, Runner, RunnerInfo, ThroughputSnapshot,
} from '../types.ts';
import { cacheBytes, scoreRow, argmaxRow, type KvCache } from './llama-model.ts';
import { OrtMllamaModel, type EncodedImage } from './mllama-model.ts';
import { mllamaPeftPlan, type MllamaPeftPlan } from './mllama-peft.ts';
import { eosIds } from './runner.ts';
import { ortVersion, type Feed, type OrtDevice } from './session.ts';

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

interface Prefill {
  key: string;
  present: KvCache;
  /** Logits row of the prefix's last position. */
  logits: Float32Array;
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

export class OrtMllamaRunner implements Runner {
  readonly info: RunnerInfo;
  private readonly counters: ThroughputSnapshot = { prefillTokens: 0, prefillSeconds: 0, decodeTokens: 0, decodeSeconds: 0 };
  private readonly eos: Set<number>;
  private readonly imageToken: number;
  private readonly encoded = new Map<string, EncodedImage>();
  private readonly visualFeeds = new WeakMap<EncodedImage, Record<string, Feed>>();
  private peakKvBytes = 0;

  constructor(
    readonly checkpoint: Checkpoint,
    readonly model: OrtMllamaModel,
    readonly tokenizer: LlamaTokenizer,
    private readonly addBos = false,
    private readonly peft: Pick<MllamaPeftPlan, 'label' | 'visualFeeds'> | null = null,
  ) {
    this.info = { backend: 'ort', device: model.device, dtype: 'fp32', model: checkpoint.id, peft: peft?.label ?? null, versions: { 'onnxruntime-node': ortVersion() } };
    this.eos = eosIds(checkpoint, tokenizer);
    this.imageToken = imageTokenId(checkpoint.config);
  }

  /** Builds the vision and text graphs of an opened mllama checkpoint. */
  static async open(checkpoint: Checkpoint, options: OrtMllamaRunnerOptions): Promise<OrtMllamaRunner> {
    assertAcceptsImages(checkpoint.arch, checkpoint.id);
    const tokenizer = options.tokenizer ?? LlamaTokenizer.fromDir(checkpoint.dir);
    const { model, peft } = await openOrtMllama(checkpoint, options);
    return new OrtMllamaRunner(checkpoint, model, tokenizer, options.addBos ?? false, peft);
  }

  private get maxPositions(): number {
    return this.model.arch.text.maxPositionEmbeddings;
  }

  private encode = (text: string): number[] => this.tokenizer.encode(text, { addSpecialTokens: this.addBos });

  private prefixToken(): number {
    const id = this.tokenizer.bosTokenId ?? this.tokenizer.eosTokenId;
    if (id === null) throw new InputError(`${this.checkpoint.dir}: the tokenizer has neither a BOS nor an EOS token to condition an empty context on`);
    return id;
  }

  /** The request's image, encoded once per distinct file; null without one. */
  private async imageOf(images: readonly Uint8Array[] | undefined): Promise<{ key: string; encoded: EncodedImage } | null> {
    if (images === undefined || images.length === 0) return null;
    if (images.length > 1) throw new InputError(`model ${this.checkpoint.id}: the ort backend takes one image per request, the task gives ${images.length}; use a single-image task`);
    const key = createHash('sha256').update(images[0]!).digest('hex');
    let encoded = this.encoded.get(key);
    if (!encoded) {
      encoded = await this.model.encodeImage(images[0]!, `request image (sha256 ${key.slice(0, 12)})`);
      this.encoded.set(key, encoded);
    }
    return { key, encoded };
  }

  /** LLaMA-Adapter V2's visual path: this image's prompts, computed once per image. */
  private visualPromptFeeds(image: EncodedImage): Record<string, Feed> | undefined {
    if (!this.peft?.visualFeeds) return undefined;
    let feeds = this.visualFeeds.get(image);
    if (!feeds) this.visualFeeds.set(image, (feeds = visualPromptFeeds({ model: this.model, peft: this.peft }, image) ?? {}));
    return feeds;
  }

  /**
   * One forward of `all.slice(from)` after a cache holding `all.slice(0, from)`; `rows` index the new
   * tokens. The tile mask is HF's over the whole sequence, so rows after <|image|> see its tiles.
   */
  private async run(all: readonly number[], from: number, past: KvCache, image: EncodedImage | null, rows: readonly number[], phase: 'prefill' | 'decode') {
    const start = performance.now();
    const tileMask = image ? crossAttentionTileMask(all, this.imageToken, image.numTiles, this.model.shape.tiles).slice(from) : null;
    const peftFeeds = image ? this.visualPromptFeeds(image) : undefined;
    const out = await this.model.forward({ ids: all.slice(from), past, image: image && tileMask ? { encoded: image, tileMask } : null, rows, peftFeeds });
    const seconds = (performance.now() - start) / 1000;
    const tokens = all.length - from;
    if (phase === 'prefill') {
      this.counters.prefillTokens += tokens;
      this.counters.prefillSeconds += seconds;
    } else {
      this.counters.decodeTokens += tokens;
      this.counters.decodeSeconds += seconds;
    }
    this.peakKvBytes = Math.max(this.peakKvBytes, cacheBytes(out.present));
    return out;
  }

  async *loglikelihood(reqs: readonly LoglikelihoodRequest[]): AsyncIterable<LoglikelihoodResult> {
    const vocab = this.model.arch.text.vocabSize;
    let last = null as Prefill | null;
    for (const r of reqs) {
      const image = await this.imageOf(r.images);
      const pair: EncodedPair = r.context === ''
        ? { context: [this.prefixToken()], continuation: this.tokenizer.encode(r.continuation, { addSpecialTokens: false }) }
        : encodePair(this.encode, r.context, r.continuation);
      const n = pair.continuation.length;
      if (n === 0) {
        yield { logprob: 0, isGreedy: true, tokens: 0 };
        continue;
      }
      // As the reference runner: <|image|> first, left-truncate to max_length + 1 tokens, feed all
      // but the last. The prefix ends at the position that predicts the first continuation token.
      const all = [...(image ? [this.imageToken] : []), ...pair.context, ...pair.continuation].slice(-(this.maxPositions + 1));
      const input = all.slice(0, -1);
      const split = input.length - n + 1;
      if (split < 1) throw new InputError(`a continuation of ${n} tokens does not fit the model window of ${this.maxPositions} positions with any context; shorten it`);
      const key = `${image?.key ?? '-'}:${input.slice(0, split).join(',')}`;
      if (last?.key !== key) {
        const out = await this.run(input.slice(0, split), 0, this.model.emptyCache(), image?.encoded ?? null, [split - 1], 'prefill');
        last = { key, present: out.present, logits: out.logits };
      }
      const first = scoreRow(last.logits, 0, vocab, pair.continuation[0]!);
      let logprob = first.logprob;
      let isGreedy = first.argmax === pair.continuation[0];
      if (n > 1) {
        const out = await this.run(input, split, last.present, image?.encoded ?? null, Array.from({ length: n - 1 }, (_, i) => i), 'prefill');
        for (let i = 1; i < n; i++) {
          const scored = scoreRow(out.logits, i - 1, vocab, pair.continuation[i]!);
          logprob += scored.logprob;
          if (scored.argmax !== pair.continuation[i]) isGreedy = false;
        }
      }
      yield { logprob, isGreedy, tokens: n };
    }
  }

  async *generate(reqs: readonly GenerateRequest[]): AsyncIterable<GenerateResult> {
    for (const r of reqs) {
      const image = await this.imageOf(r.images);
      const prompt = [...(image ? [this.imageToken] : []), ...(r.context === '' ? [this.prefixToken()] : this.encode(r.context))];
      const generated = await this.greedy(prompt.slice(-this.maxPositions), image?.encoded ?? null, r.maxTokens, r.until);
      const text = this.tokenizer.decode(generated, { skipSpecialTokens: true });
      const stop = firstStop(text, r.until);
      yield { text: stop >= 0 ? text.slice(0, stop) : text, tokens: generated.length };
    }
  }

  /**
   * Greedy token ids after `prompt` (ids used as given: <|image|> where the caller put it), KV-cached;
   * an eos token, when reached, is the last of them (`llama-eval generate`).
   */
  async greedyIds(prompt: readonly number[], image: Uint8Array | null, maxTokens: number): Promise<number[]> {
    if (prompt.length === 0 || prompt.length > this.maxPositions) throw new InputError(`prompt of ${prompt.length} tokens: expected 1 to ${this.maxPositions} (the model window)`);
    const encoded = await this.imageOf(image ? [image] : undefined);
    return this.greedy([...prompt], encoded?.encoded ?? null, maxTokens, []);
  }

  private async greedy(ids: number[], image: EncodedImage | null, maxTokens: number, until: readonly string[]): Promise<number[]> {
    const vocab = this.model.arch.text.vocabSize;
    const generated: number[] = [];
    let out = await this.run(ids, 0, this.model.emptyCache(), image, [ids.length - 1], 'prefill');
    while (generated.length < maxTokens) {
      const next = argmaxRow(out.logits, 0, vocab);
      generated.push(next);
      if (this.eos.has(next)) break;
      if (until.length > 0 && firstStop(this.tokenizer.decode(generated, { skipSpecialTokens: true }), until) >= 0) break;
      if (generated.length >= maxTokens || ids.length >= this.maxPositions) break;
      ids.push(next);
      out = await this.run(ids, ids.length - 1, out.present, image, [0], 'decode');
    }
    return generated;
  }

  memory(): MemorySnapshot {
    // maxRSS is in kilobytes (getrusage ru_maxrss); ORT's CPU arena lives inside the RSS.
    return { peakRssBytes: process.resourceUsage().maxRSS * 1024, arenaBytes: null, deviceBytes: null, kvCacheBytes: this.peakKvBytes };
  }

  throughput(): ThroughputSnapshot {
    return { ...this.counters };
  }

  async close(): Promise<void> {
    await this.model.close();
  }
}
