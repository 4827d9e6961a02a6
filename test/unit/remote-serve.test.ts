// `llama-eval serve` end to end on loopback: the OpenAI-compatible runner against our own server
// gives the reference runner's answers, the server handles concurrent clients, and malformed
// requests get a 4xx naming the problem while the server stays up.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as serveCommand from '../../harness/cli/serve.ts';
import { InputError } from '../../results/errors.ts';
import { ReferenceRunner } from '../../runners/reference-runner.ts';
import { OpenAiRunner } from '../../runners/remote/openai.ts';
import { servedReferenceModel } from '../../runners/remote/served-reference.ts';
import { CompletionsServer } from '../../runners/remote/server.ts';

const root = mkdtempSync(join(tmpdir(), 'llama-eval-serve-'));
const env = { ...process.env, LLAMA_EVAL_CACHE: join(root, 'cache') };
let server: CompletionsServer;
let url = '';

beforeAll(async () => {
  server = new CompletionsServer(await servedReferenceModel('tiny-llama-2', { env }));
  url = `http://127.0.0.1:${await server.listen(0)}`;
});
afterAll(async () => {
  await server.close();
  rmSync(root, { recursive: true, force: true });
});

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

async function post(body: unknown, raw?: string): Promise<{ status: number; json: { error?: { message: string } } }> {
  const response = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw ?? JSON.stringify(body) });
  return { status: response.status, json: (await response.json()) as { error?: { message: string } } };
}

const SCORING = [
  { context: 'The capital of France is ', continuation: 'Paris' },
  { context: 'Question: is the sky blue? Answer:', continuation: ' yes' },
  { context: 'Question: is the sky blue? Answer:', continuation: ' no' },
  { context: 'Hello', continuation: ' world, how are you' },
];

describe('OpenAiRunner against llama-eval serve (reference model)', () => {
  it('scores and generates exactly as the reference runner does', async () => {
    const remote = new OpenAiRunner({ baseUrl: `${url}/v1`, modelName: 'tiny-llama-2', backoffMs: 1 });
    const local = await ReferenceRunner.open('tiny-llama-2', { env });
    const got = await collect(remote.loglikelihood(SCORING));
    const want = await collect(local.loglikelihood(SCORING));
    got.forEach((g, i) => {
      expect(g.tokens).toBe(want[i]!.tokens);
      expect(g.isGreedy).toBe(want[i]!.isGreedy);
      // Both sides are the float64 reference; JSON carries doubles exactly.
      expect(Math.abs(g.logprob - want[i]!.logprob)).toBeLessThan(1e-9);
    });
    const gen = [{ context: 'Once upon a time', until: ['.'], maxTokens: 5 }];
    expect(await collect(remote.generate(gen))).toEqual(await collect(local.generate(gen)));
  });

  it('serves 8 concurrent clients, each getting its own answer', async () => {
    const requests = Array.from({ length: 8 }, (_, i) => ({ context: `Count: ${i}`, continuation: ` ${i + 1}` }));
    const sequential = await collect(new OpenAiRunner({ baseUrl: url, modelName: 'tiny-llama-2', concurrency: 1 }).loglikelihood(requests));
    const concurrent = await collect(new OpenAiRunner({ baseUrl: url, modelName: 'tiny-llama-2', concurrency: 8 }).loglikelihood(requests));
    expect(concurrent).toEqual(sequential);
    expect(new Set(sequential.map((r) => r.logprob)).size).toBe(8);
  });
});

describe('malformed requests', () => {
  it('answers 4xx with a message naming the problem, and keeps serving', async () => {
    const bad = await post(null, '{"model": "tiny-llama-2", "prompt": ');
    expect(bad.status).toBe(400);
    expect(bad.json.error!.message).toMatch(/not valid JSON/);
    const wrongType = await post({ model: 'tiny-llama-2', prompt: 5 });
    expect(wrongType.status).toBe(400);
    expect(wrongType.json.error!.message).toMatch(/^prompt: /);
    const huge = await post({ model: 'tiny-llama-2', prompt: 'hi', max_tokens: 1_000_000_000 });
    expect(huge.status).toBe(400);
    expect(huge.json.error!.message).toMatch(/max_tokens: .*exceeds the model's context of 4096 tokens/); // tiny-llama-2 max_position_embeddings
    const negative = await post({ model: 'tiny-llama-2', prompt: 'hi', max_tokens: -1 });
    expect(negative.status).toBe(400);
    const sampled = await post({ model: 'tiny-llama-2', prompt: 'hi', temperature: 0.7 });
    expect(sampled.status).toBe(400);
    const unknown = await post({ model: 'gpt-4', prompt: 'hi' });
    expect(unknown.status).toBe(404);
    expect(unknown.json.error!.message).toMatch(/model "gpt-4" is not served here/);
    const noRoute = await fetch(`${url}/v1/chat/completions`, { method: 'POST', body: '{}' });
    expect(noRoute.status).toBe(404);
    const getCompletions = await fetch(`${url}/v1/completions`);
    expect(getCompletions.status).toBe(405);
    // Still up, and still right.
    const ok = await post({ model: 'tiny-llama-2', prompt: 'Hello', max_tokens: 2, temperature: 0 });
    expect(ok.status).toBe(200);
    const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string }[] };
    expect(models.data.map((m) => m.id)).toEqual(['tiny-llama-2']);
  });
});

describe('llama-eval serve', () => {
  it('prints the URL it serves and stops cleanly', async () => {
    let printed = '';
    let stop!: () => void;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    process.env.LLAMA_EVAL_CACHE = env.LLAMA_EVAL_CACHE;
    const done = serveCommand.run({ model: 'tiny-llama-2', port: 0, host: '127.0.0.1' }, { out: (s) => (printed += s), err: () => {} }, stopped);
    for (let i = 0; i < 100 && printed === ''; i++) await new Promise((r) => setTimeout(r, 20));
    const served = /http:\/\/127\.0\.0\.1:(\d+)\/v1/.exec(printed);
    expect(served).not.toBeNull();
    const models = (await (await fetch(`${served![0]}/models`)).json()) as { data: { id: string }[] };
    expect(models.data[0]!.id).toBe('tiny-llama-2');
    stop();
    expect(await done).toBe(0);
  });

  it('refuses a port outside 0-65535', async () => {
    await expect(serveCommand.run({ model: 'tiny-llama-2', port: 70000 }, { out: () => {}, err: () => {} })).rejects.toThrow(InputError);
  });
});
