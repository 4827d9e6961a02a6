// What the ORT image runners (LLaMA 3.2 Vision: mllama-runner.ts; LLaMA 4: llama4-vision-runner.ts)
// share behind the Runner contract: the prompt layout and tokenization of the reference runner
// (runners/reference-runner.ts: the image's ids before the context, HFLM `_encode_pair`, left
// truncation to the window), so every backend scores the same token sequences; each image encoded
// once per content hash; a loglikelihood request reusing the previous request's prefill when its
// prefix (image + context) is the same (a multiple-choice question), its continuation fed from that
// KV cache; greedy generation token by token from the cache. Batch 1 throughout.
//
// A subclass says how an image is encoded, which ids it puts in the text, and runs one forward.
import { InputError } from '../../results/errors.ts';
import type { Checkpoint } from '../hf/checkpoint.ts';
import { encodePair, firstStop, type EncodedPair } from '../reference-runner.ts';
import type { ModelArch } from '../arch.ts';
import type { LlamaTokenizer } from '../tokenizer.ts';
import { encodeOnce } from '../vision/images.ts';
import type {
  GenerateRequest, GenerateResult, LoglikelihoodRequest, LoglikelihoodResult, MemorySnapshot, Runner, RunnerInfo, ThroughputSnapshot,
} from '../types.ts';
import { argmaxRow, cacheBytes, scoreRow, type KvCache } from './llama-model.ts';
import { eosIds } from './runner.ts';
import { ortVersion, type OrtDevice } from './session.ts';

/** One forward's result: the cache after it and the logits rows asked for. */
export interface ImageForward {
  present: KvCache;
  logits: Float32Array;
}

interface Prefill extends ImageForward {
  key: string;
}

/** What the loop needs of a runner's model (both image models have it). */
export interface ImageRunnerModel {
  readonly arch: ModelArch;
  readonly device: OrtDevice;
  emptyCache(): KvCache;
  close(): Promise<void>;
}

export abstract class OrtImageRunner<I, M extends ImageRunnerModel> implements Runner {
  readonly info: RunnerInfo;
  private readonly counters: ThroughputSnapshot = { prefillTokens: 0, prefillSeconds: 0, decodeTokens: 0, decodeSeconds: 0 };
  private readonly eos: Set<number>;
  private readonly encoded = new Map<string, I>();
  private peakKvBytes = 0;

  protected constructor(
    readonly checkpoint: Checkpoint,
    readonly model: M,
    readonly tokenizer: LlamaTokenizer,
    private readonly addBos: boolean,
    peft: string | null,
  ) {
    this.info = { backend: 'ort', device: model.device, dtype: 'fp32', model: checkpoint.id, peft, versions: { 'onnxruntime-node': ortVersion() } };
    this.eos = eosIds(checkpoint, tokenizer);
  }

  /** Encodes one image file (`name` for error messages). */
  protected abstract encodeImage(bytes: Uint8Array, name: string): Promise<I>;
  /** The ids the image puts before the context (`<|image|>`, or LLaMA 4's image block). */
  protected abstract imageIds(image: I): number[];
  /** The forward of `all.slice(from)` after a cache holding `all.slice(0, from)`; `rows` index the new tokens. */
  protected abstract forward(all: readonly number[], from: number, past: KvCache, image: I | null, rows: readonly number[]): Promise<ImageForward>;

  protected get maxPositions(): number {
    return this.model.arch.text.maxPositionEmbeddings;
  }

  private get vocabSize(): number {
    return this.model.arch.text.vocabSize;
  }

  async close(): Promise<void> {
    await this.model.close();
  }

  private encode = (text: string): number[] => this.tokenizer.encode(text, { addSpecialTokens: this.addBos });

  private prefixToken(): number {
    const id = this.tokenizer.bosTokenId ?? this.tokenizer.eosTokenId;
    if (id === null) throw new InputError(`${this.checkpoint.dir}: the tokenizer has neither a BOS nor an EOS token to condition an empty context on`);
    return id;
  }

  /** The request's image with its content hash, encoded once per distinct file; null without one. */
  protected imageOf(images: readonly Uint8Array[] | undefined): Promise<{ key: string; value: I } | null> {
    return encodeOnce(this.encoded, images, { backend: 'ort', model: this.checkpoint.id }, (bytes, name) => this.encodeImage(bytes, name));
  }

  /** forward() with the throughput counters and the KV-cache peak kept. */
  private async run(all: readonly number[], from: number, past: KvCache, image: I | null, rows: readonly number[], phase: 'prefill' | 'decode'): Promise<ImageForward> {
    const start = performance.now();
    const out = await this.forward(all, from, past, image, rows);
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
    const vocab = this.vocabSize;
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
      // As the reference runner: image ids first, left-truncate to max_length + 1 tokens, feed all
      // but the last. The prefix ends at the position that predicts the first continuation token.
      const all = [...(image ? this.imageIds(image.value) : []), ...pair.context, ...pair.continuation].slice(-(this.maxPositions + 1));
      const input = all.slice(0, -1);
      const split = input.length - n + 1;
      if (split < 1) throw new InputError(`a continuation of ${n} tokens does not fit the model window of ${this.maxPositions} positions with any context; shorten it`);
      const key = `${image?.key ?? '-'}:${input.slice(0, split).join(',')}`;
      if (last?.key !== key) {
        const out = await this.run(input.slice(0, split), 0, this.model.emptyCache(), image?.value ?? null, [split - 1], 'prefill');
        last = { key, present: out.present, logits: out.logits };
      }
      const first = scoreRow(last.logits, 0, vocab, pair.continuation[0]!);
      let logprob = first.logprob;
      let isGreedy = first.argmax === pair.continuation[0];
      if (n > 1) {
        const out = await this.run(input, split, last.present, image?.value ?? null, Array.from({ length: n - 1 }, (_, i) => i), 'prefill');
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
      const prompt = [...(image ? this.imageIds(image.value) : []), ...(r.context === '' ? [this.prefixToken()] : this.encode(r.context))];
      const generated = await this.greedy(prompt.slice(-this.maxPositions), image?.value ?? null, r.maxTokens, r.until);
      const text = this.tokenizer.decode(generated, { skipSpecialTokens: true });
      const stop = firstStop(text, r.until);
      yield { text: stop >= 0 ? text.slice(0, stop) : text, tokens: generated.length };
    }
  }

  /**
   * Greedy token ids after the image's ids (none without an image) and `text`, KV-cached; an eos
   * token, when reached, is the last of them (`llama-eval generate --image`).
   */
  async greedyAfterImage(text: readonly number[], image: Uint8Array | null, maxTokens: number): Promise<number[]> {
    const encoded = await this.imageOf(image ? [image] : undefined);
    const ids = [...(encoded ? this.imageIds(encoded.value) : []), ...text];
    if (ids.length === 0 || ids.length > this.maxPositions) throw new InputError(`prompt of ${ids.length} tokens (image included): expected 1 to ${this.maxPositions} (the model window)`);
    return this.greedy(ids, encoded?.value ?? null, maxTokens, []);
  }

  /** Greedy ids after `ids` (extended in place), KV-cached; stops after an eos id, a stop string, maxTokens or the window. */
  protected async greedy(ids: number[], image: I | null, maxTokens: number, until: readonly string[]): Promise<number[]> {
    const vocab = this.vocabSize;
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
}
