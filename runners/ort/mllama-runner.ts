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
import { assertAcceptsImages } from '../vision/mllama-checkpoint.ts';
import { crossAttentionTileMask, imageTokenId } from '../vision/mllama-text.ts';
import type {
  GenerateRequest, GenerateResult, LoglikelihoodRequest, LoglikelihoodResult, MemorySnapshot, Runner, RunnerInfo, ThroughputSnapshot,
} from '../types.ts';
import { cacheBytes, scoreRow, argmaxRow, type KvCache } from './llama-model.ts';
import { OrtMllamaModel, type EncodedImage } from './mllama-model.ts';
import { eosIds } from './runner.ts';
import { ortVersion, type OrtDevice } from './session.ts';

export interface OrtMllamaRunnerOptions {
  device: OrtDevice;
  /** Mirrors HFLM's `add_bos_token`; default false (as the reference and ORT text runners). */
  addBos?: boolean;
  /** ORT intra-op threads; 0 (default) lets ORT pick. */
  threads?: number;
  /** `--peft`: not supported on mllama yet (refused, as by the reference backend). */
  peft?: string;
}

interface Prefill {
  key: string;
  present: KvCache;
  /** Logits row of the prefix's last position. */
  logits: Float32Array;
}

export class OrtMllamaRunner implements Runner {
  readonly info: RunnerInfo;
  private readonly counters: ThroughputSnapshot = { prefillTokens: 0, prefillSeconds: 0, decodeTokens: 0, decodeSeconds: 0 };
  private readonly eos: Set<number>;
  private readonly imageToken: number;
  private readonly encoded = new Map<string, EncodedImage>();
  private peakKvBytes = 0;

  constructor(
    readonly checkpoint: Checkpoint,
    readonly model: OrtMllamaModel,
    readonly tokenizer: LlamaTokenizer,
    private readonly addBos = false,
  ) {
    this.info = { backend: 'ort', device: model.device, dtype: 'fp32', model: checkpoint.id, peft: null, versions: { 'onnxruntime-node': ortVersion() } };
    this.eos = eosIds(checkpoint, tokenizer);
    this.imageToken = imageTokenId(checkpoint.config);
  }

  /** Builds the vision and text graphs of an opened mllama checkpoint. */
  static async open(checkpoint: Checkpoint, options: OrtMllamaRunnerOptions): Promise<OrtMllamaRunner> {
    assertAcceptsImages(checkpoint.arch, checkpoint.id);
    if (options.peft !== undefined) {
      throw new InputError(`model ${checkpoint.id}: --peft on an mllama (LLaMA 3.2 Vision) model is not supported by the ort backend yet; drop --peft`);
    }
    const tokenizer = LlamaTokenizer.fromDir(checkpoint.dir);
    const model = await OrtMllamaModel.fromDir(checkpoint.dir, { device: options.device, intraOpThreads: options.threads ?? 0 });
    return new OrtMllamaRunner(checkpoint, model, tokenizer, options.addBos ?? false);
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

  /**
   * One forward of `all.slice(from)` after a cache holding `all.slice(0, from)`; `rows` index the new
   * tokens. The tile mask is HF's over the whole sequence, so rows after <|image|> see its tiles.
   */
  private async run(all: readonly number[], from: number, past: KvCache, image: EncodedImage | null, rows: readonly number[], phase: 'prefill' | 'decode') {
    const start = performance.now();
    const tileMask = image ? crossAttentionTileMask(all, this.imageToken, image.numTiles, this.model.shape.tiles).slice(from) : null;
    const out = await this.model.forward({ ids: all.slice(from), past, image: image && tileMask ? { encoded: image, tileMask } : null, rows });
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
    const vocab = this.model.arch.text.vocabSize;
    for (const r of reqs) {
      const image = await this.imageOf(r.images);
      const prompt = [...(image ? [this.imageToken] : []), ...(r.context === '' ? [this.prefixToken()] : this.encode(r.context))];
      const ids = prompt.slice(-this.maxPositions);
      const generated: number[] = [];
      let out = await this.run(ids, 0, this.model.emptyCache(), image?.encoded ?? null, [ids.length - 1], 'prefill');
      while (generated.length < r.maxTokens) {
        const next = argmaxRow(out.logits, 0, vocab);
        generated.push(next);
        if (this.eos.has(next)) break;
        if (r.until.length > 0 && firstStop(this.tokenizer.decode(generated, { skipSpecialTokens: true }), r.until) >= 0) break;
        if (generated.length >= r.maxTokens || ids.length >= this.maxPositions) break;
        ids.push(next);
        out = await this.run(ids, ids.length - 1, out.present, image?.encoded ?? null, [0], 'decode');
      }
      const text = this.tokenizer.decode(generated, { skipSpecialTokens: true });
      const stop = firstStop(text, r.until);
      yield { text: stop >= 0 ? text.slice(0, stop) : text, tokens: generated.length };
    }
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
