// A Runner over an OpenAI-compatible completions server (vLLM, TGI, llama.cpp server, `llama-eval
// serve`): POST {base}/v1/completions.
// - generate: `prompt`, `max_tokens`, `temperature: 0`, `stop`; stop strings are applied again
//   here, since servers differ on whether the matched stop string is included.
// - loglikelihood: the prompt is context + continuation, scored with `echo: true, logprobs: 1` (the
//   form vLLM and TGI accept, and lm-evaluation-harness's `local-completions` sends); the
//   continuation's tokens are those whose `text_offset` is at or past the end of the context, so
//   no local tokenizer is needed. `max_tokens: 1` as lm-evaluation-harness sends it (some servers
//   refuse 0); the generated token lies past the prompt and is ignored.
// The API key is read from an environment variable the user names, sent as a Bearer token, and
// kept out of RunnerInfo (records never see it).
import { z } from 'zod';
import { InputError } from '../../results/errors.ts';
import { rejectImages } from '../vision/images.ts';
import type { GenerateRequest, GenerateResult, LoglikelihoodRequest, LoglikelihoodResult, MemorySnapshot, Runner, RunnerInfo, ThroughputSnapshot } from '../types.ts';
import { firstStop } from '../reference-runner.ts';
import { mapOrdered, postJson, RemoteError, type RetryPolicy } from './http.ts';

export interface OpenAiRunnerOptions {
  /** Server root, with or without the trailing /v1 (http://localhost:8000 or http://localhost:8000/v1). */
  baseUrl: string;
  /** The `model` field of each request: the name the server serves the model under. */
  modelName: string;
  /** Name of the environment variable holding the API key (never the key itself). */
  apiKeyEnv?: string | null;
  env?: NodeJS.ProcessEnv;
  /** Requests in flight at once (default 8). */
  concurrency?: number;
  /** Per-attempt timeout (default 300 s: a long generation on a loaded server is slow, not dead). */
  timeoutMs?: number;
  maxRetries?: number;
  backoffMs?: number;
  maxBackoffMs?: number;
}

const usageSchema = z.object({ prompt_tokens: z.number().optional(), completion_tokens: z.number().optional() }).passthrough().nullish();

const generateSchema = z
  .object({ choices: z.array(z.object({ text: z.string() }).passthrough()).min(1), usage: usageSchema })
  .passthrough();

const logprobsSchema = z
  .object({
    tokens: z.array(z.string()),
    token_logprobs: z.array(z.number().nullable()),
    top_logprobs: z.array(z.record(z.string(), z.number()).nullable()).nullish(),
    text_offset: z.array(z.number().int()),
  })
  .passthrough();

const scoreSchema = z
  .object({ choices: z.array(z.object({ text: z.string().optional(), logprobs: logprobsSchema }).passthrough()).min(1), usage: usageSchema })
  .passthrough();

/** The /v1/completions URL of a base URL; an InputError for anything but http(s). */
export function completionsUrl(baseUrl: string): string {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new InputError(`--base-url ${baseUrl}: not a URL (expected e.g. http://localhost:8000/v1)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InputError(`--base-url ${baseUrl}: expected an http:// or https:// URL`);
  const path = url.pathname.replace(/\/+$/, '');
  url.pathname = `${path.endsWith('/v1') ? path : `${path}/v1`}/completions`;
  return url.toString();
}

function parse<T>(schema: z.ZodType<T>, json: unknown, url: string, what: string): T {
  const parsed = schema.safeParse(json);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const at = issue.path.length > 0 ? issue.path.join('.') : '(root)';
  throw new RemoteError(`${url}: malformed ${what} response: ${at}: ${issue.message} (is this an OpenAI-compatible /v1/completions server?)`, null, 1);
}

export class OpenAiRunner implements Runner {
  readonly info: RunnerInfo;
  private readonly url: string;
  private readonly headers: Record<string, string>;
  private readonly policy: RetryPolicy;
  private readonly concurrency: number;
  private readonly stats: ThroughputSnapshot = { prefillTokens: 0, prefillSeconds: 0, decodeTokens: 0, decodeSeconds: 0 };

  constructor(options: OpenAiRunnerOptions) {
    this.url = completionsUrl(options.baseUrl);
    if (options.modelName.trim() === '') throw new InputError('--model-name: empty; give the name the server serves the model under (GET /v1/models lists them)');
    this.headers = {};
    if (options.apiKeyEnv) {
      const key = (options.env ?? process.env)[options.apiKeyEnv];
      if (!key) throw new InputError(`--api-key-env ${options.apiKeyEnv}: that environment variable is not set (export it, or drop the flag for a server without authentication)`);
      this.headers.authorization = `Bearer ${key}`;
    }
    const concurrency = options.concurrency ?? 8;
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new InputError(`--concurrency ${concurrency}: expected a positive integer`);
    this.concurrency = concurrency;
    this.policy = {
      maxRetries: options.maxRetries ?? 5,
      backoffMs: options.backoffMs ?? 500,
      maxBackoffMs: options.maxBackoffMs ?? 30_000,
      timeoutMs: options.timeoutMs ?? 300_000,
    };
    this.info = {
      backend: 'openai',
      device: new URL(this.url).host,
      dtype: 'server',
      model: options.modelName,
      peft: null,
      versions: {},
    };
  }

  private async score(req: LoglikelihoodRequest): Promise<LoglikelihoodResult> {
    // Trailing whitespace of the context belongs to the continuation (lm-evaluation-harness
    // `_encode_pair`), so " Paris" after "is " is scored as the token " Paris".
    const trailing = req.context.length - req.context.trimEnd().length;
    const context = req.context.slice(0, req.context.length - trailing);
    const prompt = req.context + req.continuation;
    if (prompt.length === context.length) return { logprob: 0, isGreedy: true, tokens: 0 };
    const body = { model: this.info.model, prompt, max_tokens: 1, temperature: 0, logprobs: 1, echo: true };
    const json = parse(scoreSchema, await postJson(this.url, body, this.headers, this.policy), this.url, 'echo/logprobs');
    const lp = json.choices[0]!.logprobs;
    const n = lp.tokens.length;
    if (lp.token_logprobs.length !== n || lp.text_offset.length !== n || (lp.top_logprobs && lp.top_logprobs.length !== n)) {
      throw new RemoteError(`${this.url}: malformed echo/logprobs response: tokens, token_logprobs, top_logprobs and text_offset differ in length`, null, 1);
    }
    let logprob = 0;
    let tokens = 0;
    let isGreedy = true;
    for (let i = 0; i < n; i++) {
      const offset = lp.text_offset[i]!;
      if (offset < context.length || offset >= prompt.length) continue; // context, or the generated token
      const value = lp.token_logprobs[i];
      if ((value === null || value === undefined) && i === 0) {
        // Servers that add no BOS cannot score the first token; vLLM/TGI prepend BOS and can.
        throw new RemoteError(`${this.url}: the server gave no logprob for the prompt's first token, so an empty context cannot be scored against it (it adds no BOS); give the request a context`, null, 1);
      }
      if (value === null || value === undefined) {
        throw new RemoteError(`${this.url}: the server returned no logprob for continuation token ${JSON.stringify(lp.tokens[i])} (does it support echo with logprobs?)`, null, 1);
      }
      logprob += value;
      tokens++;
      const top = lp.top_logprobs?.[i];
      if (top) {
        const best = Object.entries(top).reduce((a, b) => (b[1] > a[1] ? b : a));
        if (best[0] !== lp.tokens[i]) isGreedy = false;
      }
    }
    if (tokens === 0) throw new RemoteError(`${this.url}: no echoed token starts inside the continuation (text_offset values do not reach offset ${context.length}); the server may not support echo`, null, 1);
    this.stats.prefillTokens += json.usage?.prompt_tokens ?? n;
    return { logprob, isGreedy, tokens };
  }

  private async complete(req: GenerateRequest): Promise<GenerateResult> {
    const body: Record<string, unknown> = { model: this.info.model, prompt: req.context, max_tokens: req.maxTokens, temperature: 0 };
    if (req.until.length > 0) body.stop = [...req.until];
    const json = parse(generateSchema, await postJson(this.url, body, this.headers, this.policy), this.url, 'completion');
    let text = json.choices[0]!.text;
    const cut = firstStop(text, req.until);
    if (cut >= 0) text = text.slice(0, cut);
    const tokens = json.usage?.completion_tokens ?? 0;
    this.stats.prefillTokens += json.usage?.prompt_tokens ?? 0;
    this.stats.decodeTokens += tokens;
    return { text, tokens };
  }

  async *loglikelihood(reqs: readonly LoglikelihoodRequest[]): AsyncIterable<LoglikelihoodResult> {
    rejectImages(reqs, this.info.backend, this.info.model); // issue 10: no image input on this backend
    const began = performance.now();
    try {
      yield* mapOrdered(reqs, this.concurrency, (req) => this.score(req));
    } finally {
      // Client-observed wall time: with requests in flight together this is not per-token latency.
      this.stats.prefillSeconds += (performance.now() - began) / 1000;
    }
  }

  async *generate(reqs: readonly GenerateRequest[]): AsyncIterable<GenerateResult> {
    rejectImages(reqs, this.info.backend, this.info.model); // issue 10: no image input on this backend
    const began = performance.now();
    try {
      yield* mapOrdered(reqs, this.concurrency, (req) => this.complete(req));
    } finally {
      this.stats.decodeSeconds += (performance.now() - began) / 1000;
    }
  }

  memory(): MemorySnapshot {
    // The model's memory lives on the server; only this client process is measured.
    return { peakRssBytes: process.resourceUsage().maxRSS * 1024, arenaBytes: null, deviceBytes: null, kvCacheBytes: null };
  }

  throughput(): ThroughputSnapshot {
    return { ...this.stats };
  }

  async close(): Promise<void> {
    // Stateless over HTTP: nothing to release.
  }
}
