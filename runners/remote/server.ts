// An OpenAI-compatible completions server (`llama-eval serve`) over a served model: POST
// /v1/completions (prompt, max_tokens, temperature 0, stop, echo, logprobs <= 1) and GET /v1/models,
// the subset vLLM/TGI offer that lm-evaluation-harness and our OpenAiRunner use. Bad requests get
// a 4xx with an OpenAI-shaped `{"error": {"message", "type"}}` naming the field; the server stays
// up. Requests are served one at a time (the model is one CPU-bound forward), in arrival order.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { z } from 'zod';
import type { GenerateResult } from '../types.ts';

/** What the server needs of a model; served-reference.ts builds one over the reference forward. */
export interface ServedModel {
  /** The name clients put in `model`. */
  name: string;
  /** Longest prompt + completion in tokens. */
  maxContext: number;
  /** Token ids of a prompt, as the runners encode contexts (no BOS; an empty prompt is [BOS]). */
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
  /** For each position i >= 1: log p(ids[i] | ids[<i]) and the argmax token with its logprob. */
  scorePositions(ids: readonly number[]): Promise<{ logprob: number; topId: number; topLogprob: number }[]>;
  /**
   * Greedy generation from a prompt until a stop string, an end-of-sequence token or maxTokens.
   * `ids` are the generated tokens (an EOS included), so token-level data need not re-tokenize.
   */
  generate(prompt: string, until: readonly string[], maxTokens: number): Promise<GenerateResult & { ids: number[] }>;
}

const MAX_BODY_BYTES = 1 << 20;

const completionSchema = z.object({
  model: z.string(),
  prompt: z.union([z.string(), z.array(z.string()).min(1).max(64)]),
  max_tokens: z.number().int().nonnegative().nullish(),
  temperature: z.number().nonnegative().nullish(),
  top_p: z.number().nullish(),
  n: z.literal(1).nullish(),
  stop: z.union([z.string(), z.array(z.string()).max(16)]).nullish(),
  echo: z.boolean().nullish(),
  logprobs: z.number().int().min(0).max(1).nullish(),
  seed: z.number().int().nullish(),
  stream: z.literal(false).nullish(),
  user: z.string().nullish(),
});

type CompletionRequest = z.infer<typeof completionSchema>;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type = 'invalid_request_error',
  ) {
    super(message);
  }
}

function send(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(413, `request body over ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Token strings and character offsets of `ids` within decode(ids), from decoded prefixes. */
function tokenSpans(model: ServedModel, ids: readonly number[]): { tokens: string[]; offsets: number[] } {
  const tokens: string[] = [];
  const offsets: number[] = [];
  let previous = '';
  for (let i = 0; i < ids.length; i++) {
    const text = model.decode(ids.slice(0, i + 1));
    // Prefix decoding keeps SentencePiece's leading-space rule and multi-token UTF-8 characters right.
    const start = text.startsWith(previous) ? previous.length : Math.min(previous.length, text.length);
    offsets.push(start);
    tokens.push(text.slice(start));
    previous = text;
  }
  return { tokens, offsets };
}

export class CompletionsServer {
  private queue: Promise<unknown> = Promise.resolve();
  private counter = 0;
  readonly server: Server;

  constructor(private readonly model: ServedModel) {
    this.server = createServer((req, res) => {
      void this.handle(req, res);
    });
  }

  /** Starts listening; resolves to the bound port (pass 0 for any free port). */
  listen(port: number, host = '127.0.0.1'): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        const address = this.server.address();
        resolve(typeof address === 'object' && address ? address.port : port);
      });
    });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const path = (req.url ?? '/').split('?')[0]!.replace(/\/+$/, '');
      if (path === '/v1/models' || path === '/models') {
        if (req.method !== 'GET') throw new HttpError(405, `${req.method} ${path}: use GET`);
        send(res, 200, { object: 'list', data: [{ id: this.model.name, object: 'model', owned_by: 'llama-eval' }] });
        return;
      }
      if (path !== '/v1/completions' && path !== '/completions') throw new HttpError(404, `no route ${path} (this server offers POST /v1/completions and GET /v1/models)`);
      if (req.method !== 'POST') throw new HttpError(405, `${req.method} ${path}: use POST`);
      let json: unknown;
      try {
        json = JSON.parse(await readBody(req));
      } catch (error) {
        if (error instanceof HttpError) throw error;
        throw new HttpError(400, `request body is not valid JSON (${(error as Error).message})`);
      }
      const parsed = completionSchema.safeParse(json);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        throw new HttpError(400, `${issue.path.join('.') || 'body'}: ${issue.message}`);
      }
      // One request at a time: queue behind the previous one, whatever its outcome.
      const result = this.queue.then(() => this.complete(parsed.data));
      this.queue = result.catch(() => undefined);
      send(res, 200, await result);
    } catch (error) {
      if (error instanceof HttpError) send(res, error.status, { error: { message: error.message, type: error.type } });
      else send(res, 500, { error: { message: (error as Error).message, type: 'server_error' } });
    }
  }

  private async complete(req: CompletionRequest): Promise<unknown> {
    if (req.model !== this.model.name) throw new HttpError(404, `model "${req.model}" is not served here (this server serves "${this.model.name}")`, 'not_found_error');
    if ((req.temperature ?? 0) !== 0) throw new HttpError(400, 'temperature: only greedy decoding (temperature 0) is served');
    const maxTokens = req.max_tokens ?? 16;
    const prompts = typeof req.prompt === 'string' ? [req.prompt] : req.prompt;
    const stop = req.stop == null ? [] : typeof req.stop === 'string' ? [req.stop] : req.stop;
    const choices = [];
    let promptTokens = 0;
    let completionTokens = 0;
    for (const [index, prompt] of prompts.entries()) {
      const ids = this.model.encode(prompt);
      if (ids.length + maxTokens > this.model.maxContext) {
        throw new HttpError(400, `max_tokens: prompt (${ids.length} tokens) + max_tokens (${maxTokens}) exceeds the model's context of ${this.model.maxContext} tokens`);
      }
      const generated = maxTokens > 0 ? await this.model.generate(prompt, stop, maxTokens) : { text: '', tokens: 0, ids: [] };
      promptTokens += ids.length;
      completionTokens += generated.tokens;
      const text = req.echo ? prompt + generated.text : generated.text;
      let logprobs = null;
      if (req.logprobs != null) {
        // Prompt ids then generated ids, as evaluated: re-tokenizing the joined text could merge
        // tokens across the seam and score a different sequence.
        const all = [...ids, ...generated.ids];
        const scores = await this.model.scorePositions(all);
        const spans = tokenSpans(this.model, all);
        const end = prompt.length + generated.text.length; // tokens cut by a stop string are dropped
        const keep = all.map((_, i) => i).filter((i) => spans.offsets[i]! < end && (req.echo || spans.offsets[i]! >= prompt.length));
        const shift = req.echo ? 0 : prompt.length;
        const top = (i: number): Record<string, number> | null => {
          if (i === 0) return null;
          const s = scores[i - 1]!;
          // When the top token is the scored one, key it by that token's text so clients comparing
          // strings (lm-evaluation-harness is_greedy) see equal keys.
          return { [s.topId === all[i] ? spans.tokens[i]! : this.model.decode([s.topId])]: s.topLogprob };
        };
        logprobs = {
          tokens: keep.map((i) => spans.tokens[i]!),
          token_logprobs: keep.map((i) => (i === 0 ? null : scores[i - 1]!.logprob)),
          top_logprobs: keep.map(top),
          text_offset: keep.map((i) => spans.offsets[i]! - shift),
        };
      }
      const finish = generated.tokens >= maxTokens ? 'length' : 'stop';
      choices.push({ index, text, logprobs, finish_reason: finish });
    }
    return {
      id: `cmpl-${++this.counter}`,
      object: 'text_completion',
      created: Math.floor(Date.now() / 1000),
      model: this.model.name,
      choices,
      usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
    };
  }
}
