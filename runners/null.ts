// The null backend (after tinygrad's NULL device): a Runner that needs no model and no hardware,
// so every path of the run engine — planning, child processes, records, resume, summaries — runs
// anywhere in milliseconds. Its numbers mean nothing about language; they are deterministic
// functions of the request text, so a test can predict every score from the requests alone.
import { createHash } from 'node:crypto';
import type {
  GenerateRequest, GenerateResult, LoglikelihoodRequest, LoglikelihoodResult, MemorySnapshot, Runner, RunnerInfo, ThroughputSnapshot,
} from './types.ts';

/** What every null generation says (then cut at a stop string / maxTokens like any runner). */
export const NULL_GENERATION = 'The answer is 0.';

/** "Tokens" of the null backend: whitespace-separated words (at least 1 for a non-empty string). */
export function nullTokenCount(text: string): number {
  const words = text.split(/\s+/).filter((w) => w !== '').length;
  return text === '' ? 0 : Math.max(1, words);
}

/**
 * The null loglikelihood of `continuation` after `context`: -(1 + 9u) per token, where u in [0, 1)
 * is read from sha256(context NUL continuation). Stable across machines and Node versions.
 */
export function nullLogprob(context: string, continuation: string): number {
  const digest = createHash('sha256').update(`${context}\u0000${continuation}`).digest();
  const u = digest.readUInt32BE(0) / 2 ** 32;
  return -(1 + 9 * u) * Math.max(1, nullTokenCount(continuation));
}

export interface NullRunnerOptions {
  model?: string;
  peft?: string | null;
}

export class NullRunner implements Runner {
  readonly info: RunnerInfo;
  private readonly counters: ThroughputSnapshot = { prefillTokens: 0, prefillSeconds: 0, decodeTokens: 0, decodeSeconds: 0 };

  constructor(options: NullRunnerOptions = {}) {
    this.info = { backend: 'null', device: 'none', dtype: 'none', model: options.model ?? 'null', peft: options.peft ?? null, versions: {} };
  }

  async *loglikelihood(reqs: readonly LoglikelihoodRequest[]): AsyncIterable<LoglikelihoodResult> {
    for (const r of reqs) {
      const start = performance.now();
      const logprob = nullLogprob(r.context, r.continuation);
      const tokens = nullTokenCount(r.continuation);
      this.counters.prefillTokens += nullTokenCount(r.context) + tokens;
      this.counters.prefillSeconds += (performance.now() - start) / 1000;
      // "Greedy" when the per-token logprob is in the best tenth of the range.
      yield { logprob, isGreedy: logprob / Math.max(1, tokens) > -1.9, tokens };
    }
  }

  async *generate(reqs: readonly GenerateRequest[]): AsyncIterable<GenerateResult> {
    for (const r of reqs) {
      const start = performance.now();
      this.counters.prefillTokens += nullTokenCount(r.context);
      const words = NULL_GENERATION.split(' ').slice(0, Math.max(0, r.maxTokens));
      let text = words.join(' ');
      for (const stop of r.until) {
        const at = stop === '' ? -1 : text.indexOf(stop);
        if (at >= 0) text = text.slice(0, at);
      }
      this.counters.decodeTokens += words.length;
      this.counters.decodeSeconds += (performance.now() - start) / 1000;
      yield { text, tokens: words.length };
    }
  }

  memory(): MemorySnapshot {
    // maxRSS is in kilobytes (getrusage's ru_maxrss on Linux).
    return { peakRssBytes: process.resourceUsage().maxRSS * 1024, arenaBytes: null, deviceBytes: null, kvCacheBytes: null };
  }

  throughput(): ThroughputSnapshot {
    return { ...this.counters };
  }

  async close(): Promise<void> {}
}
