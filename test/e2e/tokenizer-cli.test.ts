// `llama-eval tokenize` and `llama-eval logprobs` as the CLI runs them (command modules, exit codes,
// JSON contract fields). The commands are registered in main.ts separately.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isInputError } from '../../harness/errors.ts';
import * as logprobs from '../../harness/cli/logprobs.ts';
import * as tokenize from '../../harness/cli/tokenize.ts';

const cache = mkdtempSync(join(tmpdir(), 'tokenizer-cli-'));
process.env.LLAMA_EVAL_CACHE = cache; // the commands read the cache location from the environment
afterAll(() => rmSync(cache, { recursive: true, force: true }));

async function cli(module: { run: typeof tokenize.run }, args: Record<string, unknown>) {
  let out = '';
  let err = '';
  try {
    const code = await module.run(args, { out: (s) => (out += s), err: (s) => (err += s) });
    return { code, out, err };
  } catch (error) {
    // What main.ts does with a thrown error.
    if (isInputError(error)) return { code: 2, out, err: `llama-eval: ${error.message}\n` };
    throw error;
  }
}

describe('llama-eval tokenize', () => {
  it('--json prints {"input_ids"} with BOS for LLaMA 2', async () => {
    const r = await cli(tokenize, { model: 'tiny-llama-2', text: 'Hello world', json: true, specialTokens: true });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual({ input_ids: [1, 15043, 3186] }); // issue #4 figure
  });

  it('--no-special-tokens gives the bare LLaMA 3 ids', async () => {
    const r = await cli(tokenize, { model: 'tiny-llama-3', text: 'Hello world', json: true, specialTokens: false });
    expect(JSON.parse(r.out)).toEqual({ input_ids: [9906, 1917] }); // issue #4 figure
  });

  it('an unknown model exits 2 with a did-you-mean', async () => {
    const r = await cli(tokenize, { model: 'tiny-llama-5', text: 'x', json: true });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^llama-eval: unknown model "tiny-llama-5"; did you mean "tiny-llama-\d(\.\d)?"\?/);
  });
});

describe('llama-eval logprobs', () => {
  it('--ids gives one logprob per token after the first, ids as given', async () => {
    const r = await cli(logprobs, { model: 'tiny-llama-4', ids: '1,80,319', backend: 'reference', json: true });
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(Object.keys(j)).toEqual(['input_ids', 'token_logprobs']);
    expect(j.input_ids).toEqual([1, 80, 319]);
    expect(j.token_logprobs[0]).toBeNull();
    expect(j.token_logprobs.slice(1).every((x: number) => x < 0)).toBe(true);
  });

  it('--text tokenizes with BOS and matches --ids of the same tokens', async () => {
    const a = JSON.parse((await cli(logprobs, { model: 'tiny-llama-2', text: 'Hello world', backend: 'reference', json: true })).out);
    expect(a.input_ids).toEqual([1, 15043, 3186]);
    const b = JSON.parse((await cli(logprobs, { model: 'tiny-llama-2', ids: '1,15043,3186', backend: 'reference', json: true })).out);
    expect(b.token_logprobs).toEqual(a.token_logprobs);
  });

  it('--backend ort gives the reference token_logprobs within 1e-4 (issue 4 acceptance)', async () => {
    const args = { model: 'tiny-llama-4', ids: '1,80,319,7,42', json: true };
    const ort = await cli(logprobs, { ...args, backend: 'ort' });
    expect(ort.code).toBe(0);
    const a = JSON.parse(ort.out);
    const b = JSON.parse((await cli(logprobs, { ...args, backend: 'reference' })).out);
    expect(a.input_ids).toEqual(b.input_ids);
    expect(a.token_logprobs[0]).toBeNull();
    a.token_logprobs.slice(1).forEach((x: number, i: number) => expect(Math.abs(x - b.token_logprobs[i + 1])).toBeLessThanOrEqual(1e-4));
  });

  it('neither --text nor --ids exits 2', async () => {
    expect((await cli(logprobs, { model: 'tiny-llama-4', backend: 'reference', json: true })).err).toBe('llama-eval: give exactly one of --text or --ids\n');
  });

  it('bad ids exit 2 naming the entry', async () => {
    expect((await cli(logprobs, { model: 'tiny-llama-4', ids: '1,x', backend: 'reference', json: true })).err).toMatch(/--ids: "x" is not a token id/);
    expect((await cli(logprobs, { model: 'tiny-llama-4', ids: '1,600', backend: 'reference', json: true })).err).toMatch(/token id 600 is outside the vocabulary of tiny-llama-4 \(vocab_size 512\)/);
  });
});
