// `llama-eval tokenize` and `llama-eval logprobs` as the CLI runs them (command modules, exit codes,
// JSON contract fields). The commands are registered in main.ts separately.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../runners/arch.ts';
import { isInputError } from '../../harness/errors.ts';
import { parsePeftSpec, type LoraSpec } from '../../harness/peft/index.ts';
import { writeLoraAdapter } from '../../runners/peft/index.ts';
import { ensureTinyCheckpoint } from '../../runners/tiny.ts';
import * as logprobs from '../../harness/cli/logprobs.ts';
import * as tokenize from '../../harness/cli/tokenize.ts';
import { LlamaTokenizer } from '../../runners/tokenizer.ts';

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

// `--image` on LLaMA 3.2 Vision (issue 10): <|image|> goes first, the JSON contract is unchanged, and the
// ORT graphs agree with the float64 reference (the oracle, runners/vision/mllama-text.ts) within 1e-4.
describe('llama-eval logprobs --image', () => {
  const VISION = 'tiny-llama-3.2-vision';
  const IMAGE_TOKEN = 128256; // zoo config image_token_index
  const IDS = '128000,791,6460,374,264'; // <|begin_of_text|> "The" ... as given; <|image|> is put before them
  let png = '';
  let adapter = '';
  beforeAll(async () => {
    const raw = new Uint8Array(24 * 16 * 3).map((_, i) => (i * 37) % 256);
    png = join(cache, 'two-tiles.png'); // 24 x 16: two real tiles after the processor's canvas fit
    writeFileSync(png, await sharp(raw, { raw: { width: 24, height: 16, channels: 3 } }).png().toBuffer());
    // A random (seeded, non-zero) LoRA on every Linear of the text model, cross-attention layers included.
    adapter = join(cache, 'vision-lora');
    const arch = parseModelConfig(JSON.parse(readFileSync(join(ensureTinyCheckpoint(VISION, { env: process.env }), 'config.json'), 'utf8')), VISION);
    writeLoraAdapter(adapter, parsePeftSpec('lora:r=4,alpha=8,targets=all-linear') as LoraSpec, arch.text, 11);
  }, 60_000);

  it('ort and reference agree within 1e-4 with an image, with and without a LoRA adapter; the image and the adapter matter', async () => {
    const run = async (extra: Record<string, unknown>) => {
      const r = await cli(logprobs, { model: VISION, ids: IDS, json: true, ...extra });
      expect(r.code, r.err).toBe(0);
      const j = JSON.parse(r.out);
      expect(Object.keys(j)).toEqual(['input_ids', 'token_logprobs']);
      return j as { input_ids: number[]; token_logprobs: (number | null)[] };
    };
    const diff = (a: (number | null)[], b: (number | null)[]) => Math.max(...a.map((x, i) => Math.abs((x ?? 0) - (b[i] ?? 0))));
    const ref = await run({ image: png, backend: 'reference' });
    expect(ref.input_ids).toEqual([IMAGE_TOKEN, 128000, 791, 6460, 374, 264]);
    // Position 0 and <|image|> itself are never predicted (it has no lm_head row).
    expect(ref.token_logprobs[0]).toBeNull();
    expect(ref.token_logprobs.slice(1).every((x) => x !== null && x < 0)).toBe(true);
    const ort = await run({ image: png, backend: 'ort' });
    expect(ort.input_ids).toEqual(ref.input_ids);
    expect(diff(ort.token_logprobs, ref.token_logprobs)).toBeLessThanOrEqual(1e-4);
    const text = await run({ backend: 'reference' });
    expect(diff(text.token_logprobs.slice(1), ref.token_logprobs.slice(2))).toBeGreaterThan(1e-3);

    const refLora = await run({ image: png, backend: 'reference', peft: adapter });
    const ortLora = await run({ image: png, backend: 'ort', peft: adapter });
    expect(diff(ortLora.token_logprobs, refLora.token_logprobs)).toBeLessThanOrEqual(1e-4);
    expect(diff(refLora.token_logprobs, ref.token_logprobs)).toBeGreaterThan(1e-3);
  }, 60_000);

  it('an unreadable or undecodable image, and an image for a text-only model, exit 2 with a clear line', async () => {
    const garbage = join(cache, 'garbage.png');
    writeFileSync(garbage, 'not an image');
    const bad = await cli(logprobs, { model: VISION, ids: IDS, json: true, backend: 'reference', image: garbage });
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/cannot decode .*expected a PNG, JPEG, WebP, GIF or TIFF file/);
    const missing = await cli(logprobs, { model: VISION, ids: IDS, json: true, backend: 'ort', image: join(cache, 'nope.png') });
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/--image .*nope\.png: cannot read the file \(ENOENT\)/);
    const text = await cli(logprobs, { model: 'tiny-llama-3', ids: '1,2', json: true, image: png });
    expect(text.code).toBe(2);
    expect(text.err).toMatch(/--image: model tiny-llama-3 is text-only \(model_type llama, no vision_config\)/);
  });
});

// `--image` on LLaMA 4 (issue 10, early fusion): the image block goes before the text as
// transformers' Llama4Processor._prompt_split_image lays it out, its <|patch|> rows are image
// features (null logprobs), and ORT agrees with the float64 reference within 1e-4.
describe('llama-eval logprobs --image on LLaMA 4', () => {
  const MODEL = 'tiny-llama-4-vision';
  const IMAGE = join(import.meta.dirname, '../../suites/data/medical-vqa/images/lesion-left.png'); // 64 x 64 px

  it('lays out the image block as Llama4Processor does, and ort equals the reference within 1e-4', async () => {
    const run = async (extra: Record<string, unknown>) => {
      const r = await cli(logprobs, { model: MODEL, text: 'Is there a lesion?', json: true, ...extra });
      expect(r.code, r.err).toBe(0);
      return JSON.parse(r.out) as { input_ids: number[]; token_logprobs: (number | null)[] };
    };
    const ref = await run({ image: IMAGE, backend: 'reference' });
    const text = await run({ backend: 'reference' });
    // Expected block, written from transformers' processing_llama4.py `_prompt_split_image` for a
    // 2 x 2 tile canvas (tiny-llama-4-vision: 28-px tiles, max_patches 4; 64 px -> 2 x 2) with 4
    // tokens per tile (7-px patches: 16 per tile, pixel shuffle 0.5 -> 4): per row, each tile's
    // patches with <|tile_x_separator|> between tiles and <|tile_y_separator|> after the row, then
    // <|image|> and the global tile's patches, inside <|image_start|> ... <|image_end|>.
    const tok = LlamaTokenizer.fromDir(ensureTinyCheckpoint(MODEL, { env: process.env }));
    const id = (s: string) => tok.encode(s, { addSpecialTokens: false })[0]!;
    const [S, E, I, P, X, Y] = ['<|image_start|>', '<|image_end|>', '<|image|>', '<|patch|>', '<|tile_x_separator|>', '<|tile_y_separator|>'].map(id);
    const p4 = [P, P, P, P];
    const block = [S, ...p4, X, ...p4, Y, ...p4, X, ...p4, Y, I, ...p4, E] as number[];
    expect(ref.input_ids).toEqual([...block, ...text.input_ids]);
    ref.input_ids.forEach((x, i) => expect(ref.token_logprobs[i] === null).toBe(i === 0 || x === P));
    const ort = await run({ image: IMAGE, backend: 'ort' });
    expect(ort.input_ids).toEqual(ref.input_ids);
    const diff = Math.max(...ref.token_logprobs.map((x, i) => Math.abs((x ?? 0) - (ort.token_logprobs[i] ?? 0))));
    expect(diff).toBeLessThanOrEqual(1e-4);
    // The image matters: the text's logprobs after the block differ from the text-only run.
    const tail = ref.token_logprobs.slice(block.length + 1);
    expect(Math.max(...tail.map((x, i) => Math.abs(x! - text.token_logprobs[i + 1]!)))).toBeGreaterThan(1e-6);
    const peft = await cli(logprobs, { model: MODEL, text: 'hi', json: true, image: IMAGE, peft: 'lora:r=4' });
    expect(peft.code).toBe(2);
  }, 60_000);
});
