// `--peft` on the commands that run a model (logprobs, generate): the ORT graph (adapter tensors as
// graph inputs, QLoRA's base as MatMulBnb4) against the float64 reference forward — two independent
// implementations — and a spec string evaluated as PEFT initialises it (LoRA B = 0: the base model).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isInputError } from '../../harness/errors.ts';
import * as generate from '../../harness/cli/generate.ts';
import * as logprobs from '../../harness/cli/logprobs.ts';
import { parsePeftSpec, type LoraSpec } from '../../harness/peft/index.ts';
import { resolveModel } from '../../harness/zoo.ts';
import { writeLoraAdapter } from '../../runners/peft/lora-write.ts';

const tmp = mkdtempSync(join(tmpdir(), 'peft-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function cli(module: { run: typeof logprobs.run }, args: Record<string, unknown>) {
  let out = '';
  try {
    const code = await module.run(args, { out: (s) => (out += s), err: () => undefined });
    return { code, out, err: '' };
  } catch (error) {
    if (isInputError(error)) return { code: 2, out, err: error.message };
    throw error;
  }
}

async function tokenLogprobs(backend: 'ort' | 'reference', peft?: string): Promise<number[]> {
  const r = await cli(logprobs, { model: 'tiny-llama-2', text: 'The patient was given aspirin', backend, json: true, ...(peft ? { peft } : {}) });
  expect(r.code).toBe(0);
  return (JSON.parse(r.out) as { token_logprobs: (number | null)[] }).token_logprobs.slice(1) as number[];
}

const maxDiff = (a: number[], b: number[]) => Math.max(...a.map((x, i) => Math.abs(x - b[i]!)));

describe('--peft on logprobs and generate', () => {
  const adapter = join(tmp, 'lora');
  // A trained-looking adapter: random A and B (B != 0), all linear layers, rank 4.
  writeLoraAdapter(adapter, parsePeftSpec('lora:r=4,alpha=8,targets=all-linear') as LoraSpec, resolveModel('tiny-llama-2').arch!.text, 11);

  it('an adapter directory: ORT equals the float64 reference within 1e-4, and moves the base', async () => {
    const [ort, ref, base] = [await tokenLogprobs('ort', adapter), await tokenLogprobs('reference', adapter), await tokenLogprobs('reference')];
    expect(maxDiff(ort, ref)).toBeLessThan(1e-4);
    expect(maxDiff(ref, base)).toBeGreaterThan(1e-3);
  });

  it('a LoRA spec string is PEFT\'s initial adapter (B = 0): exactly the base model', async () => {
    expect(await tokenLogprobs('reference', 'lora:r=8')).toEqual(await tokenLogprobs('reference'));
  });

  it('a QLoRA spec quantizes the base to NF4: ORT equals the reference, both differ from fp32', async () => {
    const [ort, ref, base] = [await tokenLogprobs('ort', 'qlora:r=8'), await tokenLogprobs('reference', 'qlora:r=8'), await tokenLogprobs('reference')];
    expect(maxDiff(ort, ref)).toBeLessThan(1e-4);
    expect(maxDiff(ref, base)).toBeGreaterThan(1e-6);
  });

  it('LLaMA-Adapter V1 as PEFT initialises it (gates 0) runs in the ORT graph and leaves the base unchanged', async () => {
    expect(maxDiff(await tokenLogprobs('ort', 'adapter-v1:layers=2,len=4'), await tokenLogprobs('reference'))).toBeLessThan(1e-4);
  });

  it('generate: the same greedy tokens on both backends with an adapter', async () => {
    const args = { model: 'tiny-llama-2', prompt: 'Question: is aspirin an NSAID?', maxNewTokens: 6, json: true, peft: adapter };
    const ort = await cli(generate, { ...args, backend: 'ort' });
    const ref = await cli(generate, { ...args, backend: 'reference' });
    expect(ort.code).toBe(0);
    expect(JSON.parse(ort.out)).toEqual(JSON.parse(ref.out));
  });

  it('a missing adapter directory is an input error naming it', async () => {
    const r = await cli(logprobs, { model: 'tiny-llama-2', text: 'x y', backend: 'ort', json: true, peft: join(tmp, 'nope/') });
    expect(r.code).toBe(2);
    expect(r.err).toContain('nope');
  });
});
