// The llama.cpp runner: a GGUF file evaluated by llama.cpp through node-llama-cpp (its prebuilt
// binaries; `build: 'never'` so nothing is compiled or downloaded). Token ids come from our own
// tokenizer when the GGUF was exported from an HF checkpoint, so the ids scored are exactly the ids
// the reference and ORT runners score; a bare GGUF file uses llama.cpp's tokenizer. Requests are
// encoded as the reference runner encodes them (lm-evaluation-harness HFLM: no BOS unless
// `addBos`, an empty context conditioned on BOS, `_encode_pair` whitespace handling), so the
// three backends answer the same items the same way.
//
// loglikelihood reads, at every continuation position, the target's logit, the max logit and the
// softmax denominator (`controlledEvaluate` with a logits filter and `totalLogitWeight`). The KV
// cache keeps the longest common prefix between requests, so N choices of one multiple-choice
// question share a single prefill.
import { existsSync } from 'node:fs';
import type { Llama, LlamaContext, LlamaContextSequence, LlamaModel, Token } from 'node-llama-cpp';
import { InputError } from '../../results/errors.ts';
import { rejectImages } from '../vision/images.ts';
import type { GenerateRequest, GenerateResult, LoglikelihoodRequest, LoglikelihoodResult, MemorySnapshot, Runner, RunnerInfo, ThroughputSnapshot } from '../types.ts';
import { encodePair, firstStop, type EncodedPair } from '../reference-runner.ts';

/** What the runner needs of a tokenizer; runners/tokenizer.ts's LlamaTokenizer is one. */
export interface TextTokenizer {
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean }): string;
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
}

export interface LlamaCppRunnerOptions {
  /** Path of the .gguf file. */
  modelPath: string;
  /** The model as the user named it (for RunnerInfo). */
  model?: string;
  /** Our tokenizer (HF tokenizer.json); null uses the vocabulary inside the GGUF. */
  tokenizer?: TextTokenizer | null;
  /** KV cache length (default min(trained context, 4096)). Longer scoring requests are
   *  left-truncated as HFLM does; a generation that cannot fit is an input error. */
  contextSize?: number;
  /** `auto` lets node-llama-cpp pick CUDA/Metal/Vulkan when present; false forces the CPU. */
  gpu?: 'auto' | false;
  /** Mirrors HFLM's `add_bos_token` (default false, as the reference runner). */
  addBos?: boolean;
  /** Token ids that end generation besides the tokenizer's EOS (config.json `eos_token_id`). */
  eosTokenIds?: readonly number[];
  /** Evaluation threads (0: all cores; default node-llama-cpp's choice). Spinning threads on a
   *  busy machine slow llama.cpp down by orders of magnitude, so shared CI passes 1. */
  threads?: number;
  /**
   * llama.cpp flash attention. Default off: with it on (node-llama-cpp's `auto` picks it on CPU),
   * sharpened tiny-llama-2 F32 logprobs moved 3.7e-3 from the float64 reference, 2.4e-6 with it off.
   */
  flashAttention?: boolean;
}

/**
 * log p(token) from what llama.cpp returns for one position: the token's logit, the max logit and
 * sum(exp(logit - max)) over the vocabulary (`totalLogitWeight`), so no vocabulary-sized map
 * crosses into JavaScript (the filter's `includeTop: 1` brings the max; `includeMax` returns nothing
 * in node-llama-cpp 3.22). llama.cpp sums the weight in float32: ~1e-5 relative, so ~1e-5 in the
 * logprob. Ties for the max count as greedy.
 */
export function scoreToken(logits: ReadonlyMap<Token, number>, totalLogitWeight: number, token: number): { logprob: number; isArgmax: boolean } {
  const max = Math.max(...logits.values());
  const logit = logits.get(token as Token);
  if (logit === undefined) throw new Error(`llama.cpp returned no logit for token ${token}`);
  if (!(totalLogitWeight >= 1)) throw new Error(`llama.cpp returned a total logit weight of ${totalLogitWeight} (expected >= 1)`);
  return { logprob: logit - max - Math.log(totalLogitWeight), isArgmax: logit === max };
}

// One Llama instance per process and GPU choice: loading the bindings takes seconds, and
// llama.cpp's backend is process-global anyway.
const llamas = new Map<string, Promise<Llama>>();

async function sharedLlama(gpu: 'auto' | false): Promise<Llama> {
  const key = String(gpu);
  let llama = llamas.get(key);
  if (!llama) {
    const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
    llama = getLlama({ build: 'never', gpu, progressLogs: false, logLevel: LlamaLogLevel.error });
    llamas.set(key, llama);
  }
  return llama;
}

/** Adapts llama.cpp's own tokenizer (for a GGUF file without an HF checkpoint beside it). */
function ggufTokenizer(model: LlamaModel): TextTokenizer {
  const bos = model.tokens.bos;
  const addsBos = model.fileInfo.metadata.tokenizer?.ggml?.add_bos_token !== false;
  return {
    bosTokenId: bos,
    eosTokenId: model.tokens.eos,
    encode(text, options = {}) {
      const ids = model.tokenize(text, false);
      return (options.addSpecialTokens ?? true) && addsBos && bos !== null ? [bos, ...ids] : ids;
    },
    decode(ids, options = {}) {
      return model.detokenize(ids as Token[], !(options.skipSpecialTokens ?? false));
    },
  };
}

export class LlamaCppRunner implements Runner {
  private readonly stats: ThroughputSnapshot = { prefillTokens: 0, prefillSeconds: 0, decodeTokens: 0, decodeSeconds: 0 };
  private peakVram = 0;

  private constructor(
    readonly info: RunnerInfo,
    private readonly llama: Llama,
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    private readonly sequence: LlamaContextSequence,
    /** The tokenizer whose ids are evaluated (ours, or the GGUF vocabulary through llama.cpp). */
    readonly tokenizer: TextTokenizer,
    private readonly addBos: boolean,
    private readonly eos: ReadonlySet<number>,
  ) {}

  private encode(text: string): number[] {
    return this.tokenizer.encode(text, { addSpecialTokens: this.addBos });
  }

  /** HFLM `prefix_token_id`: what conditions a continuation (or a generation) with no context. */
  private prefixToken(): number {
    const id = this.tokenizer.bosTokenId ?? this.tokenizer.eosTokenId;
    if (id === null) throw new InputError(`${this.info.model}: the tokenizer has neither a BOS nor an EOS token to condition an empty context on`);
    return id;
  }

  static async open(options: LlamaCppRunnerOptions): Promise<LlamaCppRunner> {
    const { getModuleVersion } = await import('node-llama-cpp');
    if (!existsSync(options.modelPath)) throw new InputError(`${options.modelPath}: no such GGUF file (export one with: llama-eval export --model <id> --format gguf --out <file>)`);
    const llama = await sharedLlama(options.gpu ?? 'auto');
    let model: LlamaModel;
    try {
      model = await llama.loadModel({ modelPath: options.modelPath });
    } catch (error) {
      throw new InputError(`${options.modelPath}: llama.cpp cannot load it as a GGUF model (${(error as Error).message})`);
    }
    const contextSize = options.contextSize ?? Math.min(model.trainContextSize, 4096);
    const general = model.fileInfo.metadata.general as { file_type?: number } | undefined;
    // llama.cpp keeps K and V in F16 by default; an F32 file gets an F32 cache so that "F32" means
    // F32 end to end, as in the ORT fp32 graph it is compared with.
    const kvType = general?.file_type === 0 ? 'F32' : 'F16';
    const context = await model.createContext({
      contextSize,
      sequences: 1,
      ...(options.threads === undefined ? {} : { threads: options.threads }),
      experimentalKvCacheKeyType: kvType,
      experimentalKvCacheValueType: kvType,
      flashAttention: options.flashAttention ?? false,
    });
    const tokenizer = options.tokenizer ?? ggufTokenizer(model);
    const version = await getModuleVersion();
    const info: RunnerInfo = {
      backend: 'llamacpp',
      device: llama.gpu === false ? 'cpu' : llama.gpu,
      dtype: general?.file_type === 1 ? 'f16' : general?.file_type === 0 ? 'f32' : `gguf-ftype-${general?.file_type ?? 'unknown'}`,
      model: options.model ?? options.modelPath,
      peft: null,
      versions: { 'node-llama-cpp': version, 'llama.cpp': llama.llamaCppRelease.release },
    };
    const eos = new Set(options.eosTokenIds ?? []);
    if (tokenizer.eosTokenId !== null) eos.add(tokenizer.eosTokenId);
    return new LlamaCppRunner(info, llama, model, context, context.getSequence(), tokenizer, options.addBos ?? false, eos);
  }

  private checkLength(n: number): void {
    if (n > this.context.contextSize) {
      throw new InputError(`request of ${n} tokens is longer than the llama.cpp context (${this.context.contextSize} tokens); raise the context size`);
    }
  }

  /** Drops cached tokens after the first `keep` that the sequence holds. */
  private async keepPrefix(ids: readonly number[], limit: number): Promise<number> {
    const common = this.sequence.compareContextTokens(ids as Token[]).firstDifferentIndex;
    const keep = Math.min(common, limit);
    if (keep < this.sequence.nextTokenIndex) await this.sequence.eraseContextTokenRanges([{ start: keep, end: this.sequence.nextTokenIndex }]);
    return this.sequence.nextTokenIndex;
  }

  /** Per-token logprobs of ids[from..] (log p(ids[i] | ids[<i])), evaluating only uncached tokens. */
  async tokenLogprobs(ids: readonly number[], from: number): Promise<{ logprob: number; isArgmax: boolean }[]> {
    if (from < 1) throw new Error('tokenLogprobs: the first scored token needs at least one token before it');
    this.checkLength(ids.length - 1);
    // Keep at most ids[0 .. from-2] cached: the logits at position from-1 must be recomputed.
    const start = await this.keepPrefix(ids, from - 1);
    const input = ids.slice(start, ids.length - 1).map((id, k) => {
      const pos = start + k;
      if (pos < from - 1) return id as Token;
      const next = ids[pos + 1] as Token;
      return [id as Token, { generateNext: { logits: { filter: { tokens: [next], includeTop: 1 } }, totalLogitWeight: true } }] as const;
    });
    const began = performance.now();
    const outputs = await this.sequence.controlledEvaluate(input as never);
    this.stats.prefillSeconds += (performance.now() - began) / 1000;
    this.stats.prefillTokens += input.length;
    const scores: { logprob: number; isArgmax: boolean }[] = [];
    for (let pos = from - 1; pos < ids.length - 1; pos++) {
      const next = outputs[pos - start]?.next;
      if (!next?.logits || next.totalLogitWeight === undefined) throw new Error(`llama.cpp returned no logits at position ${pos}`);
      scores.push(scoreToken(next.logits, next.totalLogitWeight, ids[pos + 1]!));
    }
    await this.sampleVram();
    return scores;
  }

  async *loglikelihood(reqs: readonly LoglikelihoodRequest[]): AsyncIterable<LoglikelihoodResult> {
    rejectImages(reqs, this.info.backend, this.info.model); // issue 10: no image input on this backend
    for (const req of reqs) {
      const pair: EncodedPair =
        req.context === ''
          ? { context: [this.prefixToken()], continuation: this.tokenizer.encode(req.continuation, { addSpecialTokens: false }) }
          : encodePair((text) => this.encode(text), req.context, req.continuation);
      if (pair.continuation.length === 0) {
        yield { logprob: 0, isGreedy: true, tokens: 0 };
        continue;
      }
      // Left-truncate to the context window as HFLM (and the reference runner) do: the last token
      // is only a target, so contextSize + 1 tokens fit.
      const ids = [...pair.context, ...pair.continuation].slice(-(this.context.contextSize + 1));
      const scores = await this.tokenLogprobs(ids, ids.length - pair.continuation.length);
      yield { logprob: scores.reduce((s, x) => s + x.logprob, 0), isGreedy: scores.every((x) => x.isArgmax), tokens: scores.length };
    }
  }

  async *generate(reqs: readonly GenerateRequest[]): AsyncIterable<GenerateResult> {
    rejectImages(reqs, this.info.backend, this.info.model); // issue 10: no image input on this backend
    for (const req of reqs) {
      const prompt = req.context === '' ? [this.prefixToken()] : this.encode(req.context);
      if (prompt.length === 0) throw new InputError('generate: the prompt has no tokens');
      this.checkLength(prompt.length + req.maxTokens);
      const start = await this.keepPrefix(prompt, prompt.length - 1);
      // Greedy (temperature 0) selection by llama.cpp's sampler: the argmax of the logits.
      const pick = { generateNext: { token: true, options: { temperature: 0 } } } as const;
      const tail = prompt.slice(start).map((id, k) => (start + k === prompt.length - 1 ? ([id as Token, pick] as const) : (id as Token)));
      let began = performance.now();
      let out = await this.sequence.controlledEvaluate(tail as never);
      this.stats.prefillSeconds += (performance.now() - began) / 1000;
      this.stats.prefillTokens += tail.length;
      const generated: number[] = [];
      let text = '';
      // Decode throughput counts forward passes, as the ORT and reference runners do: the first
      // generated token comes from the prefill, so n tokens cost n - 1 decode steps.
      let decodeSteps = 0;
      began = performance.now();
      while (generated.length < req.maxTokens) {
        const next = out[out.length - 1]?.next.token;
        if (next === undefined || next === null) throw new Error('llama.cpp returned no next token');
        // Counted like the reference runner: an EOS ends generation and is one of its tokens.
        generated.push(next);
        if (this.eos.has(next)) break;
        text = this.tokenizer.decode(generated, { skipSpecialTokens: true });
        if (firstStop(text, req.until) >= 0 || generated.length === req.maxTokens) break;
        out = await this.sequence.controlledEvaluate([[next, pick]] as never);
        decodeSteps += 1;
      }
      this.stats.decodeSeconds += (performance.now() - began) / 1000;
      this.stats.decodeTokens += decodeSteps;
      const stop = firstStop(text, req.until);
      yield { text: stop >= 0 ? text.slice(0, stop) : text, tokens: generated.length };
    }
    await this.sampleVram();
  }

  private async sampleVram(): Promise<void> {
    if (this.llama.gpu === false) return;
    const state = await this.llama.getVramState();
    this.peakVram = Math.max(this.peakVram, state.used);
  }

  memory(): MemorySnapshot {
    return {
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      // node-llama-cpp's estimate of the weights' and the context's (KV + compute buffers) RAM.
      arenaBytes: this.model.size + this.context.memoryUsage.ram,
      deviceBytes: this.llama.gpu === false ? null : this.peakVram,
      kvCacheBytes: this.context.stateSize,
    };
  }

  throughput(): ThroughputSnapshot {
    return { ...this.stats };
  }

  async close(): Promise<void> {
    await this.context.dispose();
    await this.model.dispose();
    // The Llama instance is shared by the runners of this process (sharedLlama) and stays loaded.
  }
}
