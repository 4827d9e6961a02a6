// Random-weight checkpoints shaped like a zoo model (e.g. `llama-3.2-1b`): the published config.json,
// the real tokenizer, and weights of the right shapes whose values are noise. Speed and memory depend
// only on shapes and dtype, so a benchmark needs no download and no gated access.
//
// runners/tiny.ts draws every value by Box-Muller, which for 1.2 billion weights would take minutes;
// here one pool of uniform noise with the std of HF's init (0.02) is drawn once, each tensor being a
// window of it at its own offset. Values repeat across tensors, which no runtime can exploit (no ORT
// or llama.cpp pass compares initializer contents), and the pool bounds the generator's memory.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseModelConfig, type ModelArch } from '../../runners/arch.ts';
import { zooEntry } from '../zoo.ts';
import { InputError } from '../../results/errors.ts';
import { textTensorSpecs } from '../../runners/hf/tensor-names.ts';
import { writeCheckpointWeights } from '../../runners/hf/weights.ts';
import { seededUniform } from '../../runners/tiny.ts';
import { tokenizerFilesFor } from '../../runners/tokenizer-convert.ts';

/** Bump when the files written change, so cached copies are regenerated. */
const GENERATOR_VERSION = 1;
const STAMP = '.llama-eval-random.json';

export interface RandomCheckpointOptions {
  /** Keep only the first n decoder layers (the quick mode's cut-down model); default all. */
  layers?: number;
  env?: NodeJS.ProcessEnv;
  /** Write here instead of the cache. */
  outDir?: string;
}

/** The zoo config of `id` with the layer count cut to `layers`, checked as a LLaMA text model. */
export function randomModelConfig(id: string, layers?: number): { config: Record<string, unknown>; arch: ModelArch } {
  const entry = zooEntry(id);
  if (!entry?.config) throw new InputError(`--model ${id}: not a zoo model with a published config (see \`llama-eval models\`)`);
  const config: Record<string, unknown> = { ...(entry.config as Record<string, unknown>) };
  if (config.model_type !== 'llama') throw new InputError(`--model ${id}: random benchmark checkpoints are LLaMA 1-3.3 text models (model_type "llama"), this is "${String(config.model_type)}"`);
  if (layers !== undefined) {
    const full = config.num_hidden_layers as number;
    if (!Number.isInteger(layers) || layers < 1 || layers > full) throw new InputError(`--layers ${layers}: expected an integer from 1 to ${full} (the layers of ${id})`);
    config.num_hidden_layers = layers;
  }
  return { config, arch: parseModelConfig(config, `zoo entry ${id}`) };
}

/**
 * `n` uniform values in [-a, a) with a = std * sqrt(3) (so their standard deviation is `std`), from a
 * seeded stream. Uniform rather than normal: 8 bytes of randomness per value instead of Box-Muller's
 * log/sqrt/cos, and for timing the distribution is immaterial.
 */
export function uniformNoise(n: number, std: number, seed: number): Float32Array {
  const uniform = seededUniform(seed);
  const a = std * Math.sqrt(3);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (2 * uniform() - 1) * a;
  return out;
}

/** Writes config.json, generation_config.json, model.safetensors and the tokenizer files of a random `id` into `dir`. */
export function writeRandomCheckpoint(id: string, dir: string, options: RandomCheckpointOptions = {}): void {
  const { config, arch } = randomModelConfig(id, options.layers);
  const specs = textTensorSpecs(arch);
  const sizes = specs.map((s) => s.shape.reduce((x, y) => x * y, 1));
  const largest = Math.max(...sizes);
  // Twice the largest tensor, so windows start at varied offsets and still fit.
  const pool = uniformNoise(2 * largest, typeof config.initializer_range === 'number' ? config.initializer_range : 0.02, 20240925);
  const tensors = specs.map((spec, i) => {
    const n = sizes[i]!;
    if (spec.init !== 'normal') return { name: spec.name, shape: spec.shape, data: new Float32Array(n).fill(spec.init === 'ones' ? 1 : 0) };
    const offset = Math.floor(((i * 2654435761) % 4294967296) / 4294967296 * (pool.length - n));
    return { name: spec.name, shape: spec.shape, data: pool.subarray(offset, offset + n) };
  });
  writeCheckpointWeights(dir, tensors, 'F32', 1);
  const fullConfig = { ...config, torch_dtype: 'float32', _llama_eval: { random: id, layers: arch.text.numLayers } };
  writeFileSync(join(dir, 'config.json'), `${JSON.stringify(fullConfig, null, 2)}\n`);
  writeFileSync(join(dir, 'generation_config.json'), `${JSON.stringify({ bos_token_id: config.bos_token_id, eos_token_id: config.eos_token_id }, null, 2)}\n`);
  const version = String(config.bos_token_id) === '128000' ? 'llama3' : 'llama2';
  const files = tokenizerFilesFor(version, { chatTemplate: false, vocabSize: arch.text.vocabSize });
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(files.tokenizerJson));
  writeFileSync(join(dir, 'tokenizer_config.json'), `${JSON.stringify(files.tokenizerConfig, null, 2)}\n`);
}

export function randomCheckpointDir(id: string, options: RandomCheckpointOptions = {}): string {
  const env = options.env ?? process.env;
  const root = env.LLAMA_EVAL_CACHE ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'llama-eval');
  return join(root, 'bench', options.layers === undefined ? `${id}-random` : `${id}-random-${options.layers}l`);
}

/**
 * The directory of random `id`, written on first use. As for tiny models, generation goes to a
 * temporary sibling renamed into place, so a killed bench never leaves half a model behind.
 */
export function ensureRandomCheckpoint(id: string, options: RandomCheckpointOptions = {}): string {
  const dir = options.outDir ?? randomCheckpointDir(id, options);
  const stamp = JSON.stringify({ id, layers: options.layers ?? null, version: GENERATOR_VERSION });
  const stampFile = join(dir, STAMP);
  if (existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp) return dir;
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  mkdirSync(tmp, { recursive: true });
  try {
    writeRandomCheckpoint(id, tmp, options);
    writeFileSync(join(tmp, STAMP), stamp);
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return dir;
}
