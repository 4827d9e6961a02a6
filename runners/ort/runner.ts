// The ORT runner: a LLaMA checkpoint as an ONNX graph (llama-graph.ts) in onnxruntime-node,
// behind the Runner contract. Multiple-choice requests that share a context are scored with one
// prefill of the context; the continuations then run as one right-padded batch over copies of its
// KV cache. Greedy generation decodes token by token from the cache.
//
// Tokenization is the reference runner's (lm-evaluation-harness HFLM: contexts without special
// tokens, empty context -> BOS, `_encode_pair` whitespace handling), so both backends score the
// same token sequences and their numbers are comparable.
import { openCheckpoint, type Checkpoint } from '../hf/checkpoint.ts';
import { encodePair, firstStop, type EncodedPair } from '../reference-runner.ts';
import { seededUniform } from '../tiny.ts';
import { LlamaTokenizer } from '../tokenizer.ts';
import { openOrtQloraModel, ortPeftPlanFor, qloraStreamBlocker } from './llama-peft.ts';
import { isBnbNf4Config } from '../quant/nf4-checkpoint.ts';
import type { ComputeDtype } from './llama-graph.ts';
import { loadReferenceFromCheckpoint } from '../reference-weights.ts';
import { InputError } from '../../results/errors.ts';
import { rejectImages } from '../vision/images.ts';
import type {
  GenerateRequest, GenerateResult, LoglikelihoodRequest, LoglikelihoodResult, MemorySnapshot, Runner, RunnerInfo, ThroughputSnapshot,
} from '../types.ts';
import { argmaxRow, cacheBytes, OrtLlamaModel, repeatCache, scoreRow, type KvCache } from './llama-model.ts';
import { ScoreHead } from './score-head.ts';
import { ortVersion, type OrtDevice } from './session.ts';

/**
 * Where continuation tokens are scored: 'graph' (default) in ORT's scoring head (score-head.ts,
 * float32 LogSoftmax, [rows, k] numbers back to JS); 'js' the float64 log-softmax of every logits
 * row in JavaScript (the path the parity tests compare the head with).
 */
export const SCORING_MODES = ['graph', 'js'] as const;
export type ScoringMode = (typeof SCORING_MODES)[number];

export interface OrtRunnerScoring {
  scoring?: ScoringMode;
}

export interface OrtRunnerOptions {
  device: OrtDevice;
  offline?: boolean;
  env?: NodeJS.ProcessEnv;
  /** Mirrors HFLM's `add_bos_token`; default false as there (and as the reference runner). */
  addBos?: boolean;
  /** ORT intra-op threads; 0 (default) lets ORT pick. */
  threads?: number;
  /**
   * `--peft` value (adapter directory or spec string, spec strings as PEFT initialises them). The
   * adapter is merged into the weights the graph is built from; methods that cannot be merged
   * (LLaMA-Adapter V1's prompts) are refused with a clear error.
   */
  peft?: string;
  /** Continuation scoring: in ORT's scoring head (default) or the float64 JS path (SCORING_MODES). */
  scoring?: ScoringMode;
  /** Compute dtype of the graph (fp32 default; fp16 halves the weights, not with --peft). */
  dtype?: ComputeDtype;
}

export interface Sampling {
  /** 0 is greedy (argmax). */
  temperature: number;
  /** Nucleus sampling: keep the most probable tokens whose probabilities sum to at least this. */
  topP: number;
  seed: number;
}

/**
 * One token from a logits row: argmax at temperature 0, else softmax(logits / temperature)
 * restricted to the top-p nucleus as HF's TopPLogitsWarper keeps it (the smallest set of most
 * probable tokens whose mass reaches top_p, at least one), renormalised, drawn with `uniform`.
 */
export function sampleRow(logits: Float32Array, sampling: Pick<Sampling, 'temperature' | 'topP'>, uniform: () => number): number {
  if (sampling.temperature <= 0) return argmaxRow(logits, 0, logits.length);
  let max = -Infinity;
  for (const x of logits) max = Math.max(max, x);
  const weights = Float64Array.from(logits, (x) => Math.exp((x - max) / sampling.temperature));
  const total = weights.reduce((a, b) => a + b, 0);
  const order = Array.from(weights.keys()).sort((a, b) => weights[b]! - weights[a]! || a - b);
  const kept: number[] = [];
  let mass = 0;
  for (const id of order) {
    kept.push(id);
    mass += weights[id]! / total;
    if (mass >= sampling.topP) break;
  }
  const keptMass = kept.reduce((a, id) => a + weights[id]!, 0);
  let u = uniform() * keptMass;
  for (const id of kept) {
    u -= weights[id]!;
    if (u < 0) return id;
  }
  return kept[kept.length - 1]!;
}

/** Continuations scored in one batch over a shared prefill (bounds the copied KV cache). */
const MAX_CONTINUATION_BATCH = 16;

/** The eos ids that end generation: config.json's eos_token_id (int or list) and the tokenizer's. */
export function eosIds(checkpoint: Checkpoint, tokenizer: LlamaTokenizer): Set<number> {
  const eos = new Set<number>();
  for (const source of [checkpoint.config.eos_token_id, checkpoint.generationConfig?.eos_token_id]) {
    for (const id of Array.isArray(source) ? source : [source]) if (typeof id === 'number') eos.add(id);
  }
  if (tokenizer.eosTokenId !== null) eos.add(tokenizer.eosTokenId);
  return eos;
}

export class OrtRunner implements Runner {
  readonly info: RunnerInfo;
  private readonly counters: ThroughputSnapshot = { prefillTokens: 0, prefillSeconds: 0, decodeTokens: 0, decodeSeconds: 0 };
  private readonly eos: Set<number>;
  private peakKvBytes = 0;
  private head: Promise<ScoreHead> | null = null;
  readonly scoring: ScoringMode;

  constructor(
    readonly checkpoint: Checkpoint,
    readonly model: OrtLlamaModel,
    readonly tokenizer: LlamaTokenizer,
    private readonly addBos = false,
    scoringOptions: OrtRunnerScoring = {},
  ) {
    this.scoring = scoringOptions.scoring ?? 'graph';
    this.info = { backend: 'ort', device: model.device, dtype: model.dtype, model: checkpoint.id, peft: null, versions: { 'onnxruntime-node': ortVersion() } };
    this.eos = eosIds(checkpoint, tokenizer);
  }

  private get maxPositions(): number {
    return this.model.text.maxPositionEmbeddings;
  }

  private encode = (text: string): number[] => this.tokenizer.encode(text, { addSpecialTokens: this.addBos });

  private prefixToken(): number {
    const id = this.tokenizer.bosTokenId ?? this.tokenizer.eosTokenId;
    if (id === null) throw new InputError(`${this.checkpoint.dir}: the tokenizer has neither a BOS nor an EOS token to condition an empty context on`);
    return id;
  }

  private encodeRequest(r: LoglikelihoodRequest): EncodedPair {
    if (r.context === '') return { context: [this.prefixToken()], continuation: this.tokenizer.encode(r.continuation, { addSpecialTokens: false }) };
    return encodePair(this.encode, r.context, r.continuation);
  }

  private track(cache: KvCache): void {
    this.peakKvBytes = Math.max(this.peakKvBytes, cacheBytes(cache));
  }

  /** One unbatched forward of `ids` from `past`, logits of the last position only. */
  private async step(ids: number[], past: KvCache, phase: 'prefill' | 'decode'): Promise<{ logits: Float32Array; present: KvCache }> {
    const start = performance.now();
    const out = await this.model.forward({ inputIds: [ids], attentionMask: [Array<number>(past.length + ids.length).fill(1)], past, logitsToKeep: 1 });
    const seconds = (performance.now() - start) / 1000;
    if (phase === 'prefill') {
      this.counters.prefillTokens += ids.length;
      this.counters.prefillSeconds += seconds;
    } else {
      this.counters.decodeTokens += ids.length;
      this.counters.decodeSeconds += seconds;
    }
    this.track(out.present);
    return out;
  }

  private scoreHead(): Promise<ScoreHead> {
    this.head ??= ScoreHead.create(this.model.text.vocabSize);
    return this.head;
  }

  /**
   * log p(targets[r][j] | logits row r) and whether each target is its row's argmax, row r of
   * `logits` [rows, vocab] scored against targets[r] (the same count for every row).
   */
  private async scoreRows(logits: Float32Array, targets: readonly (readonly number[])[]): Promise<{ logprob: number; greedy: boolean }[]> {
    if (this.scoring === 'graph') {
      const scored = await (await this.scoreHead()).score(logits, targets);
      return Array.from(scored.logprobs, (logprob, i) => ({ logprob, greedy: scored.greedy[i] === 1 }));
    }
    const vocab = this.model.text.vocabSize;
    return targets.flatMap((row, r) => row.map((target) => {
      const scored = scoreRow(logits, r, vocab, target);
      return { logprob: scored.logprob, greedy: scored.argmax === target };
    }));
  }

  /** Scores continuations that share `context` from one prefill. */
  private async scoreGroup(context: number[], continuations: number[][]): Promise<LoglikelihoodResult[]> {
    if (context.length === 0) throw new InputError(`a continuation of ${continuations[0]?.length} tokens does not fit the model window of ${this.maxPositions} positions with any context; shorten it`);
    const prefill = await this.step(context, this.model.emptyCache(1), 'prefill');
    const results: LoglikelihoodResult[] = continuations.map((cont) => ({ logprob: 0, isGreedy: true, tokens: cont.length }));
    // The first token of every continuation is predicted by the context's last position: one row.
    const starts = continuations.flatMap((cont, i) => (cont.length > 0 ? [i] : []));
    if (starts.length > 0) {
      const first = await this.scoreRows(prefill.logits, [starts.map((i) => continuations[i]![0]!)]);
      starts.forEach((i, j) => {
        results[i]!.logprob = first[j]!.logprob;
        results[i]!.isGreedy = first[j]!.greedy;
      });
    }
    // The rest of each continuation: tokens 0..n-2 are fed (token n-1 is only predicted).
    const pending = continuations.map((c, i) => ({ i, fed: c.slice(0, -1), targets: c.slice(1) })).filter((p) => p.fed.length > 0);
    for (let start = 0; start < pending.length; start += MAX_CONTINUATION_BATCH) {
      const batch = pending.slice(start, start + MAX_CONTINUATION_BATCH);
      const width = Math.max(...batch.map((p) => p.fed.length));
      const began = performance.now();
      const past = repeatCache(prefill.present, batch.length);
      // lm_head only at the real (unpadded) positions: with a 128K vocabulary it costs more than the
      // decoder layers of a small model, and padding rows would be computed only to be thrown away.
      const logitsRows = batch.flatMap((p, b) => p.targets.map((_, j) => b * width + j));
      const out = await this.model.forward({
        inputIds: batch.map((p) => [...p.fed, ...Array<number>(width - p.fed.length).fill(0)]),
        attentionMask: batch.map((p) => [...Array<number>(context.length + p.fed.length).fill(1), ...Array<number>(width - p.fed.length).fill(0)]),
        past,
        logitsRows,
      });
      this.counters.prefillTokens += batch.reduce((n, p) => n + p.fed.length, 0);
      this.counters.prefillSeconds += (performance.now() - began) / 1000;
      this.track(out.present);
      // out.logits holds the rows of logitsRows, in its order; each row predicts one target.
      const scored = await this.scoreRows(out.logits, batch.flatMap((p) => p.targets.map((target) => [target])));
      let row = 0;
      for (const p of batch) {
        const result = results[p.i]!;
        for (let j = 0; j < p.targets.length; j++, row++) {
          result.logprob += scored[row]!.logprob;
          if (!scored[row]!.greedy) result.isGreedy = false;
        }
      }
    }
    return results;
  }

  async *loglikelihood(reqs: readonly LoglikelihoodRequest[]): AsyncIterable<LoglikelihoodResult> {
    rejectImages(reqs, this.info.backend, this.info.model); // issue 10: no image input on this backend
    const encoded = reqs.map((r) => this.encodeRequest(r));
    let at = 0;
    while (at < encoded.length) {
      // A run of consecutive requests with the same context tokens (a multiple-choice question).
      const key = encoded[at]!.context.join(',');
      let end = at + 1;
      while (end < encoded.length && encoded[end]!.context.join(',') === key) end++;
      const group = encoded.slice(at, end);
      const longest = Math.max(...group.map((p) => p.context.length + p.continuation.length - 1));
      if (longest <= this.maxPositions) {
        yield* await this.scoreGroup(group[0]!.context, group.map((p) => p.continuation));
      } else {
        // Too long for the window: left-truncate each request on its own, as HFLM does.
        for (const pair of group) {
          const all = [...pair.context, ...pair.continuation].slice(-(this.maxPositions + 1));
          const n = pair.continuation.length;
          const [result] = await this.scoreGroup(all.slice(0, all.length - n), [pair.continuation]);
          yield result!;
        }
      }
      at = end;
    }
  }

  /** Greedy decoding from `prompt` ids: the generated ids (an eos, when reached, included). */
  async greedy(prompt: readonly number[], maxTokens: number, until: readonly string[] = []): Promise<number[]> {
    return this.complete(prompt, maxTokens, { until });
  }

  /** Decoding from `prompt` ids, greedy unless `sampling` has a temperature above 0. */
  async complete(prompt: readonly number[], maxTokens: number, options: { until?: readonly string[]; sampling?: Sampling } = {}): Promise<number[]> {
    if (prompt.length === 0) throw new InputError('generate: the prompt has no tokens');
    const until = options.until ?? [];
    const sampling = options.sampling ?? { temperature: 0, topP: 1, seed: 0 };
    const uniform = seededUniform(sampling.seed);
    const input = prompt.slice(-this.maxPositions);
    const vocab = this.model.text.vocabSize;
    const generated: number[] = [];
    let out = await this.step(input, this.model.emptyCache(1), 'prefill');
    while (generated.length < maxTokens) {
      const next = sampleRow(out.logits.subarray(0, vocab), sampling, uniform);
      generated.push(next);
      if (this.eos.has(next)) break;
      if (until.length > 0 && firstStop(this.tokenizer.decode(generated, { skipSpecialTokens: true }), until) >= 0) break;
      if (generated.length >= maxTokens || out.present.length >= this.maxPositions) break;
      out = await this.step([next], out.present, 'decode');
    }
    return generated;
  }

  async *generate(reqs: readonly GenerateRequest[]): AsyncIterable<GenerateResult> {
    rejectImages(reqs, this.info.backend, this.info.model); // issue 10: no image input on this backend
    for (const r of reqs) {
      const ids = r.context === '' ? [this.prefixToken()] : this.encode(r.context);
      const generated = await this.greedy(ids, r.maxTokens, r.until);
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
    const head = this.head;
    this.head = null;
    if (head !== null) await (await head).close();
    await this.model.close();
  }
}

/** Opens `modelArg` (zoo id, tiny-* id, checkpoint directory or HF repo id) as an OrtRunner. */
export async function openOrtRunner(modelArg: string, options: OrtRunnerOptions): Promise<OrtRunner> {
  const checkpoint = await openCheckpoint(modelArg, { offline: options.offline, env: options.env });
  const tokenizer = LlamaTokenizer.fromDir(checkpoint.dir);
  const sessionOptions = { device: options.device, intraOpThreads: options.threads ?? 0, dtype: options.dtype };
  const { model, peftLabel } = await openOrtLlamaModel(checkpoint, options.peft, sessionOptions);
  const runner = new OrtRunner(checkpoint, model, tokenizer, options.addBos ?? false, { scoring: options.scoring });
  runner.info.peft = peftLabel;
  return runner;
}

/**
 * The ORT graph of `checkpoint`, with `peft` (adapter directory, official .pth release, or spec string
 * evaluated as PEFT initialises it) applied as graph inputs: LoRA/DoRA side branches, LLaMA-Adapter
 * prompts and gates, and for QLoRA the base linears as NF4 `MatMulBnb4` (runners/ort/llama-peft.ts,
 * parity with the float64 reference in test/parity/peft-ort-unmerged.test.ts). QLoRA without DoRA or
 * modules_to_save, and NF4 checkpoints, take the streamed loader (openOrtQloraModel); every other
 * adapter builds its plan from a float64 copy of the model, so that path is for models that fit twice
 * in memory.
 */
export async function openOrtLlamaModel(
  checkpoint: Checkpoint,
  peft: string | undefined,
  options: { device?: OrtDevice; intraOpThreads?: number; dtype?: ComputeDtype } = {},
): Promise<{ model: OrtLlamaModel; peftLabel: string | null }> {
  // QLoRA (and NF4 checkpoints) stream: each base linear is quantized (or taken as stored) as the
  // graph builder reaches it, never a float copy of the model (bench:peft: 0.33x of fp32's peak RSS).
  if (qloraStreamBlocker(peft, { nf4Checkpoint: isBnbNf4Config(checkpoint.config) }) === null) {
    if (options.dtype === 'fp16') throw new InputError('--dtype fp16 with an NF4 base (QLoRA or an NF4 checkpoint) is not supported by the ORT graph: use --dtype fp32');
    const { model, label } = await openOrtQloraModel(checkpoint, peft, { ...options, init: 'zero' });
    return { model, peftLabel: label };
  }
  if (peft === undefined) return { model: await OrtLlamaModel.fromCheckpoint(checkpoint, options), peftLabel: null };
  const plan = ortPeftPlanFor(loadReferenceFromCheckpoint(checkpoint), peft, { init: 'zero' });
  const model = await OrtLlamaModel.create(checkpoint.arch, checkpoint.config, plan.weights, { ...options, peft: plan.peft });
  return { model, peftLabel: plan.adapted.peft?.label ?? null };
}
