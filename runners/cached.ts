// A response cache as a Runner wrapper: re-runs, other metrics over the same requests and resumed
// runs ask the inner runner only for what it has not answered before. Keyed by what decides an
// answer — model files hash, adapter hash, backend, dtype (the namespace) and the request itself —
// so a changed checkpoint, adapter or precision misses instead of returning stale numbers.
//
// Layout: <dir>/<namespace sha256>.jsonl, one `{"k": request key, "r": result}` per line, read into
// memory on open and appended to as misses are answered. One file per namespace rather than one per
// request: a suite is thousands of requests, and one append per answer keeps a killed run's answers.
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type {
  GenerateRequest, GenerateResult, LoglikelihoodRequest, LoglikelihoodResult, MemorySnapshot, Runner, RunnerInfo, ThroughputSnapshot,
} from './types.ts';

/** `$XDG_CACHE_HOME/llama-eval/responses`, else `~/.cache/llama-eval/responses`. */
export function defaultResponseCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME !== '' ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(base, 'llama-eval', 'responses');
}

export interface CacheKeyParts {
  /** Hash of the model's files (or, for a server, its URL and served name). */
  modelHash: string;
  /** Hash of the adapter files or spec; null for the base model. */
  adapterHash: string | null;
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** The namespace file name for this runner and key parts. */
export function cacheNamespace(info: RunnerInfo, parts: CacheKeyParts): string {
  return sha256(JSON.stringify(['llama-eval-responses/1', parts.modelHash, parts.adapterHash, info.backend, info.dtype]));
}

// Issue 10: a request with images is keyed by their hashes too (one question text is asked of many
// images); a request without images keeps the key it always had, so existing caches stay valid.
const imagesKey = (images: readonly Uint8Array[] | undefined): string[][] =>
  images && images.length > 0 ? [images.map((b) => createHash('sha256').update(b).digest('hex'))] : [];
const llKey = (r: LoglikelihoodRequest): string => sha256(JSON.stringify(['loglikelihood', r.context, r.continuation, ...imagesKey(r.images)]));
const genKey = (r: GenerateRequest): string => sha256(JSON.stringify(['generate', r.context, [...r.until], r.maxTokens, ...imagesKey(r.images)]));

export interface CacheStats {
  hits: number;
  misses: number;
}

export class CachedRunner implements Runner {
  readonly info: RunnerInfo;
  readonly stats: CacheStats = { hits: 0, misses: 0 };
  private readonly file: string;
  private readonly entries = new Map<string, unknown>();

  constructor(private readonly inner: Runner, dir: string, parts: CacheKeyParts) {
    this.info = inner.info;
    mkdirSync(dir, { recursive: true });
    this.file = join(dir, `${cacheNamespace(inner.info, parts)}.jsonl`);
    if (existsSync(this.file)) {
      const text = readFileSync(this.file, 'utf8');
      // End a torn last line, so the next answer appended starts a line of its own.
      if (text !== '' && !text.endsWith('\n')) appendFileSync(this.file, '\n');
      for (const line of text.split('\n')) {
        if (line === '') continue;
        try {
          const entry = JSON.parse(line) as { k?: unknown; r?: unknown };
          if (typeof entry.k === 'string' && entry.r !== undefined) this.entries.set(entry.k, entry.r);
        } catch {
          // A torn last line from a killed run: that answer is simply recomputed.
        }
      }
    }
  }

  /** Answers `reqs` in order: hits from the cache, the misses from one call to the inner runner. */
  private async *answer<Q, R>(reqs: readonly Q[], key: (q: Q) => string, valid: (r: unknown) => r is R, compute: (qs: Q[]) => AsyncIterable<R>): AsyncIterable<R> {
    const keys = reqs.map(key);
    const missing = reqs.filter((_, i) => !valid(this.entries.get(keys[i] as string)));
    const fresh: R[] = [];
    if (missing.length > 0) {
      for await (const result of compute(missing)) {
        const k = key(missing[fresh.length] as Q);
        this.entries.set(k, result);
        appendFileSync(this.file, `${JSON.stringify({ k, r: result })}\n`);
        fresh.push(result);
      }
      if (fresh.length !== missing.length) throw new Error(`${this.info.backend} runner answered ${fresh.length} of ${missing.length} requests`);
    }
    this.stats.misses += missing.length;
    this.stats.hits += reqs.length - missing.length;
    for (const k of keys) yield this.entries.get(k) as R;
  }

  loglikelihood(reqs: readonly LoglikelihoodRequest[]): AsyncIterable<LoglikelihoodResult> {
    return this.answer(reqs, llKey, isLoglikelihoodResult, (qs) => this.inner.loglikelihood(qs));
  }

  generate(reqs: readonly GenerateRequest[]): AsyncIterable<GenerateResult> {
    return this.answer(reqs, genKey, isGenerateResult, (qs) => this.inner.generate(qs));
  }

  memory(): MemorySnapshot {
    return this.inner.memory();
  }

  /** The inner runner's: cached answers cost no tokens and no seconds. */
  throughput(): ThroughputSnapshot {
    return this.inner.throughput();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

function isLoglikelihoodResult(r: unknown): r is LoglikelihoodResult {
  const o = r as Partial<LoglikelihoodResult> | undefined;
  return typeof o === 'object' && o !== null && typeof o.logprob === 'number' && typeof o.isGreedy === 'boolean' && typeof o.tokens === 'number';
}

function isGenerateResult(r: unknown): r is GenerateResult {
  const o = r as Partial<GenerateResult> | undefined;
  return typeof o === 'object' && o !== null && typeof o.text === 'string' && typeof o.tokens === 'number';
}
