// The ORT runner of LLaMA 4 with images (Llama4ForConditionalGeneration): image + text requests
// through the vision and text graphs (llama4-model.ts), behind the Runner contract. Prompt layout
// and tokenization are the reference runner's (runners/reference-runner.ts: the image block of
// Llama4Processor._prompt_split_image before the context, HFLM `_encode_pair`, left truncation), so
// the two backends score the same token sequences; test/e2e/vision-run.test.ts holds them to the
// same per-sample scores.
//
// Caching as the mllama ORT runner: each image is encoded once (by content hash); a loglikelihood
// request reuses the previous request's prefill when its prefix (image + context) is the same, and
// greedy generation decodes token by token from the KV cache. Batch 1 throughout.
import { createHash } from 'node:crypto';
import { InputError } from '../../results/errors.ts';
import type { Checkpoint } from '../hf/checkpoint.ts';
import { encodePair, firstStop, type EncodedPair } from '../reference-runner.ts';
import { LlamaTokenizer } from '../tokenizer.ts';
import { assertLlama4AcceptsImages } from '../vision/llama4-checkpoint.ts';
import { llama4ImagePromptIds, llama4ImageTokens, type Llama4ImageTokens } from '../vision/llama4-text.ts';
import type {
  GenerateRequest, GenerateResult, LoglikelihoodRequest, LoglikelihoodResult, MemorySnapshot, Runner, RunnerInfo, ThroughputSnapshot,
} from '../types.ts';
import { argmaxRow, cacheBytes, scoreRow, type KvCache } from './llama-model.ts';
import { OrtLlama4Model } from './llama4-model.ts';
import { eosIds } from './runner.ts';
import { ortVersion, type OrtDevice } from './session.ts';

export interface OrtLlama4RunnerOptions {
  device: OrtDevice;
  /** Mirrors HFLM's `add_bos_token`; default false (as the reference and ORT text runners). */
  addBos?: boolean;
  /** ORT intra-op threads; 0 (default) lets ORT pick. */
  threads?: number;
  /** `--peft`: not supported on LLaMA 4 vision checkpoints on ORT yet (refused). */
  peft?: string;
}

/** An encoded image: the ids of its block in the text and the rows for its `<|patch|>` tokens. */
interface FusedImage {
  key: string;
  block: number[];
  features: Float32Array;
}

interface Prefill {
  key: string;
  present: KvCache;
  logits: Float32Array;
}

export class OrtLlama4VisionRunner implements Runner {
  readonly info: RunnerInfo;
  private readonly counters: ThroughputSnapshot = { prefillTokens: 0, prefillSeconds: 0, decodeTokens: 0, decodeSeconds: 0 };
  private readonly eos: Set<number>;
  private readonly tokens: Llama4ImageTokens;
  private readonly encoded = new Map<string, FusedImage>();
  private peakKvBytes = 0;

  constructor(
    readonly checkpoint: Checkpoint,
    readonly model: OrtLlama4Model,
    readonly tokenizer: LlamaTokenizer,
    private readonly addBos = false,
  ) {
    this.info = { backend: 'ort', device: model.device, dtype: 'fp32', model: checkpoint.id, peft: null, versions: { 'onnxruntime-node': ortVersion() } };
    this.eos = eosIds(checkpoint, tokenizer);
    this.tokens = llama4ImageTokens((t) => tokenizer.encode(t, { addSpecialTokens: false }), checkpoint.config, checkpoint.id);
  }

  /** Builds the vision and text graphs of an opened Llama4ForConditionalGeneration checkpoint. */
  static async open(checkpoint: Checkpoint, options: OrtLlama4RunnerOptions): Promise<OrtLlama4VisionRunner> {
    assertLlama4AcceptsImages(checkpoint.arch, checkpoint.id);
    if (options.peft !== undefined) {
      throw new InputError(`model ${checkpoint.id}: --peft on a LLaMA 4 vision checkpoint is not supported by the ort backend yet; drop --peft or use --backend reference`);
    }
    const tokenizer = LlamaTokenizer.fromDir(checkpoint.dir);
    const model = await OrtLlama4Model.fromDir(checkpoint.dir, checkpoint.config, checkpoint.id, { device: options.device, intraOpThreads: options.threads ?? 0 });
    return new OrtLlama4VisionRunner(checkpoint, model, tokenizer, options.addBos ?? false);
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
  private async imageOf(images: readonly Uint8Array[] | undefined): Promise<FusedImage | null> {
    if (images === undefined || images.length === 0) return null;
    if (images.length > 1) throw new InputError(`model ${this.checkpoint.id}: the ort backend takes one image per request, the task gives ${images.length}; use a single-image task`);
    const key = createHash('sha256').update(images[0]!).digest('hex');
    let hit = this.encoded.get(key);
    if (!hit) {
      const { image, features } = await this.model.encodeImage(images[0]!, `request image (sha256 ${key.slice(0, 12)})`);
      hit = { key, block: llama4ImagePromptIds(this.tokens, image.aspectRatio, this.model.tokensPerTile), features };
      this.encoded.set(key, hit);
    }
    return hit;
  }

  /**
   * One forward of `all.slice(from)` after a cache holding `all.slice(0, from)`; `rows` index the new
   * tokens. The new tokens' `<|patch|>` rows are those of the image in order (masked_scatter over
   * the whole sequence), so a sequence whose truncation cut into the image block is refused.
   */
  private async run(all: readonly number[], from: number, past: KvCache, image: FusedImage | null, rows: readonly number[], phase: 'prefill' | 'decode') {
    const patch = this.tokens.patch;
    const count = (ids: readonly number[]) => ids.reduce((n, id) => n + (id === patch ? 1 : 0), 0);
    const hidden = this.model.arch.text.hiddenSize;
    const imageRows = image ? image.features.length / hidden : 0;
    if (count(all) !== imageRows) {
      throw new InputError(`image features and image tokens do not match: ${count(all)} <|patch|> tokens in the sequence, ${imageRows} features (a truncated context cut into the image block; shorten the prompt)`);
    }
    const before = count(all.slice(0, from));
    const fresh = count(all.slice(from));
    const features = image && fresh > 0 ? image.features.subarray(before * hidden, (before + fresh) * hidden) : null;
    const start = performance.now();
    const out = await this.model.forward({ ids: all.slice(from), past, features, rows });
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
      // As the reference runner: image block first, left-truncate to max_length + 1 tokens, feed all
      // but the last. The prefix ends at the position that predicts the first continuation token.
      const all = [...(image?.block ?? []), ...pair.context, ...pair.continuation].slice(-(this.maxPositions + 1));
      const input = all.slice(0, -1);
      const split = input.length - n + 1;
      if (split < 1) throw new InputError(`a continuation of ${n} tokens does not fit the model window of ${this.maxPositions} positions with any context; shorten it`);
      const key = `${image?.key ?? '-'}:${input.slice(0, split).join(',')}`;
      if (last?.key !== key) {
        const out = await this.run(input.slice(0, split), 0, this.model.emptyCache(), image, [split - 1], 'prefill');
        last = { key, present: out.present, logits: out.logits };
      }
      const first = scoreRow(last.logits, 0, vocab, pair.continuation[0]!);
      let logprob = first.logprob;
      let isGreedy = first.argmax === pair.continuation[0];
      if (n > 1) {
        const out = await this.run(input, split, last.present, image, Array.from({ length: n - 1 }, (_, i) => i), 'prefill');
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
      const prompt = [...(image?.block ?? []), ...(r.context === '' ? [this.prefixToken()] : this.encode(r.context))];
      const ids = prompt.slice(-this.maxPositions);
      const generated: number[] = [];
      let out = await this.run(ids, 0, this.model.emptyCache(), image, [ids.length - 1], 'prefill');
      while (generated.length < r.maxTokens) {
        const next = argmaxRow(out.logits, 0, vocab);
        generated.push(next);
        if (this.eos.has(next)) break;
        if (r.until.length > 0 && firstStop(this.tokenizer.decode(generated, { skipSpecialTokens: true }), r.until) >= 0) break;
        if (generated.length >= r.maxTokens || ids.length >= this.maxPositions) break;
        ids.push(next);
        out = await this.run(ids, ids.length - 1, out.present, image, [0], 'decode');
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
