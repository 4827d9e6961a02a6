// The OpenAI-compatible runner against a fake /v1/completions server on loopback: the request
// bodies it sends, continuation scoring by text offsets, stop strings, retries on 429/503, the
// timeout, the concurrency limit, the API key header, and clear errors for malformed answers.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../results/errors.ts';
import { RemoteError } from '../../runners/remote/http.ts';
import { completionsUrl, OpenAiRunner, type OpenAiRunnerOptions } from '../../runners/remote/openai.ts';

type Handler = (body: Record<string, unknown>, req: IncomingMessage, res: ServerResponse) => void;

let server: Server;
let baseUrl = '';
let handler: Handler = () => {};
const seen: { body: Record<string, unknown>; auth: string | undefined }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let raw = '';
    req.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    req.on('end', () => {
      const body = JSON.parse(raw) as Record<string, unknown>;
      seen.push({ body, auth: req.headers.authorization });
      handler(body, req, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterEach(() => {
  seen.length = 0;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function json(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(value));
}

/** Echo logprobs as vLLM returns them: one entry per prompt token, then the generated token. */
function echo(tokens: string[], logprobs: (number | null)[], top: (Record<string, number> | null)[]) {
  const offsets: number[] = [];
  let at = 0;
  for (const t of tokens) {
    offsets.push(at);
    at += t.length;
  }
  return { choices: [{ text: tokens.join(''), logprobs: { tokens, token_logprobs: logprobs, top_logprobs: top, text_offset: offsets } }], usage: { prompt_tokens: tokens.length - 1, completion_tokens: 1 } };
}

const fast: Partial<OpenAiRunnerOptions> = { backoffMs: 1, maxBackoffMs: 5, timeoutMs: 2000, maxRetries: 3 };

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

describe('OpenAiRunner.loglikelihood', () => {
  it('sends echo/logprobs requests and sums the continuation tokens found by text offset', async () => {
    handler = (body, _req, res) => {
      if (body.prompt === 'The capital of France is Paris') {
        // " Paris" starts at offset 24, the end of the context once its trailing space moves to the continuation.
        json(res, 200, echo(['The', ' capital', ' of', ' France', ' is', ' Paris', '.'], [null, -1, -2, -3, -4, -0.5, -7], [null, { ' capital': -1 }, { ' of': -2 }, { ' France': -3 }, { ' is': -4 }, { ' Paris': -0.5 }, { '.': -7 }]));
      } else {
        // "Answer: 12" as three tokens; the second is not the top-1 choice, so the answer is not greedy.
        json(res, 200, echo(['Answer', ':', ' 1', '2', '\n'], [null, -0.1, -2.5, -0.25, -3], [null, { ':': -0.1 }, { ' 7': -1.5 }, { '2': -0.25 }, { '\n': -3 }]));
      }
    };
    const runner = new OpenAiRunner({ baseUrl, modelName: 'tiny', ...fast });
    const results = await collect(runner.loglikelihood([
      { context: 'The capital of France is ', continuation: 'Paris' },
      { context: 'Answer:', continuation: ' 12' },
    ]));
    expect(results).toEqual([
      { logprob: -0.5, isGreedy: true, tokens: 1 },
      { logprob: -2.75, isGreedy: false, tokens: 2 }, // -2.5 + -0.25; the generated "\n" is past the prompt
    ]);
    expect(seen[0]!.body).toEqual({ model: 'tiny', prompt: 'The capital of France is Paris', max_tokens: 1, temperature: 0, logprobs: 1, echo: true });
  });

  it('reports malformed answers as errors naming the field, without retrying them', async () => {
    const runner = new OpenAiRunner({ baseUrl, modelName: 'tiny', ...fast });
    const req = [{ context: 'a', continuation: ' b' }];
    handler = (_b, _r, res) => json(res, 200, { choices: [] });
    await expect(collect(runner.loglikelihood(req))).rejects.toThrow(/malformed echo\/logprobs response: choices: /);
    expect(seen).toHaveLength(1);
    handler = (_b, _r, res) => json(res, 200, { choices: [{ text: 'a b' }] });
    await expect(collect(runner.loglikelihood(req))).rejects.toThrow(/malformed echo\/logprobs response: choices\.0\.logprobs/);
    handler = (_b, _r, res) => json(res, 200, { choices: [{ logprobs: { tokens: ['a', ' b'], token_logprobs: [null], text_offset: [0, 1] } }] });
    await expect(collect(runner.loglikelihood(req))).rejects.toThrow(/differ in length/);
    handler = (_b, _r, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>proxy login</html>');
    };
    await expect(collect(runner.loglikelihood(req))).rejects.toThrow(/not JSON: "<html>proxy login/);
    // Echo without offsets reaching the continuation: the server did not echo the prompt.
    handler = (_b, _r, res) => json(res, 200, { choices: [{ logprobs: { tokens: ['x'], token_logprobs: [-1], text_offset: [0] } }] });
    await expect(collect(runner.loglikelihood(req))).rejects.toThrow(/no echoed token starts inside the continuation/);
  });
});

describe('OpenAiRunner.generate', () => {
  it('sends max_tokens, temperature 0 and stop, and cuts at the first stop string', async () => {
    handler = (_b, _r, res) => json(res, 200, { choices: [{ text: ' Paris. Then Rome\nmore' }], usage: { prompt_tokens: 5, completion_tokens: 7 } });
    const runner = new OpenAiRunner({ baseUrl, modelName: 'tiny', ...fast });
    const [result] = await collect(runner.generate([{ context: 'Capital of France:', until: ['\n', '.'], maxTokens: 16 }]));
    expect(result).toEqual({ text: ' Paris', tokens: 7 });
    expect(seen[0]!.body).toEqual({ model: 'tiny', prompt: 'Capital of France:', max_tokens: 16, temperature: 0, stop: ['\n', '.'] });
    expect(runner.throughput()).toMatchObject({ prefillTokens: 5, decodeTokens: 7 });
  });

  it('keeps at most `concurrency` requests in flight and returns results in request order', async () => {
    let inFlight = 0;
    let peak = 0;
    handler = (body, _r, res) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      // Later prompts answer sooner, so completion order is the reverse of request order.
      const n = Number(body.prompt);
      setTimeout(() => {
        inFlight--;
        json(res, 200, { choices: [{ text: `#${n}` }], usage: { completion_tokens: 1 } });
      }, 60 - 8 * n);
    };
    const runner = new OpenAiRunner({ baseUrl, modelName: 'tiny', concurrency: 2, ...fast });
    const reqs = Array.from({ length: 6 }, (_, i) => ({ context: String(i), until: [], maxTokens: 1 }));
    const results = await collect(runner.generate(reqs));
    expect(results.map((r) => r.text)).toEqual(['#0', '#1', '#2', '#3', '#4', '#5']);
    expect(peak).toBe(2);
  });
});

describe('retries, timeouts and errors', () => {
  it('retries 503 and 429 (honouring Retry-After) and then succeeds', async () => {
    let calls = 0;
    handler = (_b, _r, res) => {
      calls++;
      if (calls === 1) json(res, 503, { error: { message: 'loading model' } });
      else if (calls === 2) json(res, 429, { error: { message: 'slow down' } }, { 'retry-after': '0' });
      else json(res, 200, { choices: [{ text: 'ok' }], usage: { completion_tokens: 1 } });
    };
    const runner = new OpenAiRunner({ baseUrl, modelName: 'tiny', ...fast });
    expect(await collect(runner.generate([{ context: 'x', until: [], maxTokens: 1 }]))).toEqual([{ text: 'ok', tokens: 1 }]);
    expect(calls).toBe(3);
  });

  it('gives up after maxRetries with the last status and the server message', async () => {
    handler = (_b, _r, res) => json(res, 503, { error: { message: 'overloaded' } });
    const runner = new OpenAiRunner({ baseUrl, modelName: 'tiny', ...fast, maxRetries: 2 });
    const error = await collect(runner.generate([{ context: 'x', until: [], maxTokens: 1 }])).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoteError);
    expect((error as RemoteError).message).toMatch(/HTTP 503: overloaded \(gave up after 3 attempts\)/);
    expect((error as RemoteError).attempts).toBe(3);
    expect(seen).toHaveLength(3);
  });

  it('does not retry a 400 and shows the server message', async () => {
    handler = (_b, _r, res) => json(res, 400, { error: { message: "max_tokens must be at most 4096" } });
    const runner = new OpenAiRunner({ baseUrl, modelName: 'tiny', ...fast });
    await expect(collect(runner.generate([{ context: 'x', until: [], maxTokens: 99999 }]))).rejects.toThrow(/HTTP 400: max_tokens must be at most 4096/);
    expect(seen).toHaveLength(1);
  });

  it('aborts an attempt after the timeout and retries it', async () => {
    handler = () => {}; // never answers
    const runner = new OpenAiRunner({ baseUrl, modelName: 'tiny', ...fast, timeoutMs: 100, maxRetries: 1 });
    const began = performance.now();
    await expect(collect(runner.generate([{ context: 'x', until: [], maxTokens: 1 }]))).rejects.toThrow(/no response within 100 ms \(gave up after 2 attempts\)/);
    expect(performance.now() - began).toBeLessThan(1500);
    expect(seen).toHaveLength(2);
  });

  it('reports a refused connection after retrying it', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const runner = new OpenAiRunner({ baseUrl: `http://127.0.0.1:${port}`, modelName: 'tiny', ...fast, maxRetries: 1 });
    await expect(collect(runner.generate([{ context: 'x', until: [], maxTokens: 1 }]))).rejects.toThrow(/ECONNREFUSED.*gave up after 2 attempts/);
  });
});

describe('configuration', () => {
  it('sends the API key from the named environment variable and never puts it in RunnerInfo', async () => {
    handler = (_b, _r, res) => json(res, 200, { choices: [{ text: 'ok' }] });
    const runner = new OpenAiRunner({ baseUrl, modelName: 'tiny', apiKeyEnv: 'MY_KEY', env: { MY_KEY: 'sk-secret-123' }, ...fast });
    await collect(runner.generate([{ context: 'x', until: [], maxTokens: 1 }]));
    expect(seen[0]!.auth).toBe('Bearer sk-secret-123');
    expect(JSON.stringify(runner.info)).not.toContain('sk-secret-123');
    expect(runner.info).toMatchObject({ backend: 'openai', device: baseUrl.slice('http://'.length), model: 'tiny' });
  });

  it('rejects an unset key variable, a bad URL, an empty model name and a bad concurrency as input errors', () => {
    expect(() => new OpenAiRunner({ baseUrl, modelName: 'tiny', apiKeyEnv: 'NOPE', env: {} })).toThrow(/--api-key-env NOPE: that environment variable is not set/);
    expect(() => new OpenAiRunner({ baseUrl: 'localhost:8000', modelName: 'tiny' })).toThrow(InputError);
    expect(() => new OpenAiRunner({ baseUrl: 'ftp://host/v1', modelName: 'tiny' })).toThrow(/expected an http/);
    expect(() => new OpenAiRunner({ baseUrl, modelName: ' ' })).toThrow(/--model-name: empty/);
    expect(() => new OpenAiRunner({ baseUrl, modelName: 'tiny', concurrency: 0 })).toThrow(/--concurrency 0/);
  });

  it('accepts the base URL with or without /v1', () => {
    expect(completionsUrl('http://gpu-node:8000')).toBe('http://gpu-node:8000/v1/completions');
    expect(completionsUrl('http://gpu-node:8000/v1/')).toBe('http://gpu-node:8000/v1/completions');
    expect(completionsUrl('https://proxy.example/team/v1')).toBe('https://proxy.example/team/v1/completions');
  });
});

describe('empty contexts', () => {
  it('explains that a server without BOS cannot score the first token', async () => {
    handler = (_b, _r, res) => json(res, 200, echo(['Hello', ' world', '!'], [null, -1, -2], [null, { ' world': -1 }, { '!': -2 }]));
    const runner = new OpenAiRunner({ baseUrl, modelName: 'tiny', ...fast });
    await expect(collect(runner.loglikelihood([{ context: '', continuation: 'Hello world' }]))).rejects.toThrow(/no logprob for the prompt's first token/);
  });
});
