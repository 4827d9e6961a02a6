// Tiny checkpoints: each `tiny-*` zoo entry becomes a real HF checkpoint directory, generated
// deterministically from a seed on first use (config.json, generation_config.json,
// model.safetensors with HF tensor names, tokenizer.json, tokenizer_config.json), cached under
// `$LLAMA_EVAL_CACHE/tiny/<id>/` (default `~/.cache/llama-eval/tiny/<id>/`).
//
// Weights follow HF `_init_weights`: linear and embedding weights ~ N(0, initializer_range = 0.02),
// norm weights 1, biases 0. Each tensor has its own stream, seeded from (seed, model id, tensor name), so a
// tensor's values do not depend on which other tensors exist.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseModelConfig } from './arch.ts';
import { InputError } from '../results/errors.ts';
import { zooEntry } from '../harness/zoo.ts';
import { textTensorSpecs } from './hf/tensor-names.ts';
// issue 10: mllama (tiny-llama-3.2-vision) tensor specs live in their own file.
import { llama4VisionTensorSpecs, mllamaTensorSpecs, TINY_LLAMA4_IMAGE_TOKENS, tinyLlama4PreprocessorConfig } from './tiny-vision.ts';
import { writeCheckpointWeights } from './hf/weights.ts';
import type { FloatDtype } from './hf/dtype.ts';
import { addedToken, tokenizerFilesFor, type TokenizerKind } from './tokenizer-convert.ts';

/** Bump when generated files change, so stale caches are regenerated. */
export const TINY_GENERATOR_VERSION = 1;
export const TINY_SEED = 20240418; // Llama 3 release date; any fixed number would do.
const STAMP = '.llama-eval-tiny.json';

export function tinyCacheDir(id: string, env: NodeJS.ProcessEnv = process.env): string {
  const root = env.LLAMA_EVAL_CACHE ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'llama-eval');
  return join(root, 'tiny', id);
}

export function isTinyId(id: string): boolean {
  return id.startsWith('tiny-') && zooEntry(id) !== undefined;
}

/** FNV-1a 32-bit hash: turns (seed, tensor name) into a stream seed. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * sfc32 (Chris Doty-Humphrey's Small Fast Counter, from PractRand): a small, well-tested 32-bit
 * generator. Returns uniform doubles in [0, 1) with 53 random bits.
 */
export function seededUniform(seed: number): () => number {
  let a = 0x9e3779b9;
  let b = 0x243f6a88;
  let c = 0xb7e15162;
  let d = seed >>> 0;
  const next = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 12; i++) next(); // mix the seed in, as the reference implementation does
  return () => ((next() >>> 5) * 67108864 + (next() >>> 6)) / 9007199254740992;
}

/** `n` draws from N(0, std²) by Box-Muller, from the stream of `seed`. */
export function seededNormal(seed: number, n: number, std: number): Float32Array {
  const uniform = seededUniform(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = 1 - uniform(); // (0, 1]: log stays finite
    const u2 = uniform();
    const r = std * Math.sqrt(-2 * Math.log(u1));
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

function tokenizerKind(version: string): TokenizerKind {
  if (version === '1' || version === '2') return 'llama2';
  if (version.startsWith('3')) return 'llama3';
  return 'synthetic';
}

export interface TinyOptions {
  env?: NodeJS.ProcessEnv;
  /** Weights dtype (F32 default, as the zoo configs' torch_dtype); F16/BF16 for loader tests. */
  dtype?: FloatDtype;
  numShards?: number;
  /** Write here instead of the cache (no stamp check). */
  outDir?: string;
  seed?: number;
}

/** Writes the checkpoint files of tiny model `id` into `dir` (which must exist). */
export function writeTinyCheckpoint(id: string, dir: string, options: TinyOptions = {}): void {
  const entry = zooEntry(id);
  if (!entry || !entry.config || !id.startsWith('tiny-')) throw new InputError(`unknown tiny model "${id}"`);
  const config = entry.config as Record<string, unknown>;
  const arch = parseModelConfig(config, `zoo entry ${id}`);
  const seed = options.seed ?? TINY_SEED;
  const std = typeof config.initializer_range === 'number' ? config.initializer_range : 0.02;
  // issue 10: dispatch mllama configs (text + vision tensors) to runners/tiny-vision.ts.
  // issue 10: a llama4 config with vision_config (tiny-llama-4-vision) adds the vision tower.
  const llama4Vision = arch.modelType === 'llama4' && arch.vision !== null;
  const specs = arch.modelType === 'mllama' ? mllamaTensorSpecs(arch) : llama4Vision ? llama4VisionTensorSpecs(arch) : textTensorSpecs(arch);
  const tensors = specs.map((spec) => {
    const n = spec.shape.reduce((x, y) => x * y, 1);
    const data = spec.init === 'normal' ? seededNormal(fnv1a(`${seed}:${id}:${spec.name}`), n, std) : new Float32Array(n).fill(spec.init === 'ones' ? 1 : 0);
    return { name: spec.name, shape: spec.shape, data };
  });
  writeCheckpointWeights(dir, tensors, options.dtype ?? 'F32', options.numShards ?? 1);
  const dtypeName = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[options.dtype ?? 'F32'];
  const fullConfig = { ...config, torch_dtype: dtypeName, transformers_version: '4.51.0', _llama_eval: { tiny: id, seed } };
  writeFileSync(join(dir, 'config.json'), `${JSON.stringify(fullConfig, null, 2)}\n`);
  const generation = { _from_model_config: true, bos_token_id: config.bos_token_id, eos_token_id: config.eos_token_id, transformers_version: '4.51.0' };
  writeFileSync(join(dir, 'generation_config.json'), `${JSON.stringify(generation, null, 2)}\n`);
  const kind = tokenizerKind(entry.version);
  // LLaMA 1 was released without a chat model; LLaMA 2's tiny stands for the chat variant's template.
  // issue 10: tiny-llama-4-vision keeps tiny-llama-4's synthetic vocabulary and appends the image
  // special tokens after it (text vocab_size = synthetic size + those), with the processor config.
  const imageTokens = llama4Vision ? TINY_LLAMA4_IMAGE_TOKENS.length : 0;
  const files = tokenizerFilesFor(kind, { chatTemplate: entry.version !== '1', vocabSize: arch.text.vocabSize - imageTokens });
  if (llama4Vision) {
    const added = files.tokenizerJson.added_tokens as unknown[];
    TINY_LLAMA4_IMAGE_TOKENS.forEach((t, i) => added.push(addedToken(arch.text.vocabSize - imageTokens + i, t)));
    writeFileSync(join(dir, 'preprocessor_config.json'), `${JSON.stringify(tinyLlama4PreprocessorConfig(arch), null, 2)}\n`);
  }
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(files.tokenizerJson));
  writeFileSync(join(dir, 'tokenizer_config.json'), `${JSON.stringify(files.tokenizerConfig, null, 2)}\n`);
}

function stampFor(id: string, options: TinyOptions): string {
  return JSON.stringify({ id, version: TINY_GENERATOR_VERSION, seed: options.seed ?? TINY_SEED, dtype: options.dtype ?? 'F32', shards: options.numShards ?? 1 });
}

/**
 * The checkpoint directory of tiny model `id`, generating it on first use. Generation writes into a
 * temporary sibling directory and renames it into place, so a killed run leaves no half model and
 * concurrent processes (test workers) never see partial files.
 */
export function ensureTinyCheckpoint(id: string, options: TinyOptions = {}): string {
  const dir = options.outDir ?? tinyCacheDir(id, options.env);
  const stamp = stampFor(id, options);
  const stampFile = join(dir, STAMP);
  if (existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp) return dir;
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  mkdirSync(tmp, { recursive: true });
  try {
    writeTinyCheckpoint(id, tmp, options);
    writeFileSync(join(tmp, STAMP), stamp);
    if (existsSync(join(dir, STAMP)) && readFileSync(join(dir, STAMP), 'utf8') === stamp) return dir; // another process won
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return dir;
}
