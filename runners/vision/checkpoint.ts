// What every vision checkpoint reader shares (mllama, LLaMA 4): the parsed config.json and the
// weights as float32 tensors read once and kept (the vision towers read each weight per tile).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseModelConfig, type ModelArch } from '../arch.ts';
import { InputError } from '../../results/errors.ts';
import { CheckpointWeights } from '../hf/weights.ts';
import type { TensorGetter } from './mllama-reference.ts';

/** The architecture of checkpoint directory `dir` (its config.json), or an InputError naming the file. */
export function readCheckpointArch(dir: string): ModelArch {
  const configPath = join(dir, 'config.json');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(configPath, 'utf8'));
  } catch (error) {
    throw new InputError(`${configPath}: cannot read config.json (${(error as Error).message})`);
  }
  return parseModelConfig(raw, configPath);
}

/** Opens the weights of `dir` behind a getter that reads each tensor as float32 once. */
export function cachedTensors(dir: string): { get: TensorGetter; close: () => void } {
  const weights = CheckpointWeights.open(dir);
  const cache = new Map<string, Float32Array>();
  const get: TensorGetter = (name) => {
    let t = cache.get(name);
    if (!t) cache.set(name, (t = weights.readFloat32(name)));
    return t;
  };
  return { get, close: () => weights.close() };
}
