// `llama-eval export --format onnx` writes a directory that transformers.js (an independent ONNX
// runtime consumer: its own config parsing, tokenizer, KV-cache plumbing and greedy loop) loads and
// generates from — the same greedy tokens as our ORT runner (issue 4 acceptance).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AutoModelForCausalLM, AutoTokenizer, env } from '@huggingface/transformers';
import { afterAll, describe, expect, it } from 'vitest';
import * as exportCmd from '../../harness/cli/export.ts';
import * as generate from '../../harness/cli/generate.ts';

const tmp = mkdtempSync(join(tmpdir(), 'export-tjs-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
env.allowRemoteModels = false;
env.localModelPath = `${tmp}/`;

async function cli(module: { run: typeof generate.run }, args: Record<string, unknown>): Promise<string> {
  let out = '';
  const code = await module.run(args, { out: (s) => (out += s), err: () => undefined });
  expect(code).toBe(0);
  return out;
}

describe('an exported directory in transformers.js', () => {
  it.each(['tiny-llama-2', 'tiny-llama-3.2'])('%s: same greedy tokens as llama-eval generate', async (id) => {
    await cli(exportCmd, { model: id, out: join(tmp, id), format: 'onnx' });
    const prompt = 'Question: is aspirin an NSAID?';
    const ours = JSON.parse(await cli(generate, { model: id, prompt, maxNewTokens: 6, backend: 'ort', json: true })) as { token_ids: number[] };
    const tokenizer = await AutoTokenizer.from_pretrained(id);
    const model = await AutoModelForCausalLM.from_pretrained(id, { dtype: 'fp32', device: 'cpu' });
    const inputs = tokenizer(prompt);
    const promptLength = (inputs.input_ids.dims as number[])[1]!;
    const output = (await model.generate({ ...inputs, max_new_tokens: 6, do_sample: false })) as { tolist(): bigint[][] };
    const theirs = output.tolist()[0]!.slice(promptLength).map(Number);
    expect(theirs).toEqual(ours.token_ids);
    await model.dispose();
  });
});
