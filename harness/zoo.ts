// The model zoo: every LLaMA version by id, with its published config, plus resolution of any
// `--model` argument (zoo id, local HF checkpoint directory, or HF repo id found in the HF cache).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { closest, distance } from 'fastest-levenshtein';
import { parseModelConfig, type ModelArch } from '../runners/arch.ts';
import { InputError } from './errors.ts';
import { LLAMA_1_2 } from './zoo/llama-1-2.ts';
import { LLAMA_3 } from './zoo/llama-3.ts';
import { LLAMA_32_VISION } from './zoo/llama-3.2-vision.ts';
import { LLAMA_4 } from './zoo/llama-4.ts';
import { TINY } from './zoo/tiny.ts';
import type { ZooEntry } from './zoo/types.ts';
import { findCachedSnapshot, hfHubCacheDir, repoFolderName } from '../runners/hf/cache.ts';

export type { ZooEntry } from './zoo/types.ts';

export const ZOO: readonly ZooEntry[] = [...LLAMA_1_2, ...LLAMA_3, ...LLAMA_32_VISION, ...LLAMA_4, ...TINY];

const BY_ID = new Map(ZOO.map((e) => [e.id, e]));

export function zooEntry(id: string): ZooEntry | undefined {
  return BY_ID.get(id);
}

export interface ResolvedModel {
  /** The name to report: the zoo id, or the path / repo id as given. */
  id: string;
  source: 'zoo' | 'path' | 'hf-cache';
  entry: ZooEntry | null;
  /** Null only for published-figures-only entries (Llama 4 Behemoth). */
  arch: ModelArch | null;
  /** Checkpoint directory, when the model came from disk. */
  dir: string | null;
}

function readConfigDir(dir: string): ModelArch {
  const file = join(dir, 'config.json');
  if (!existsSync(file)) throw new InputError(`${file}: not found (a model directory needs the HF config.json)`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new InputError(`${file}: not valid JSON (${(error as Error).message})`);
  }
  return parseModelConfig(json, file);
}

/** Did-you-mean for an unknown model id, or null when nothing is close. */
export function suggestModel(id: string): string | null {
  const ids = ZOO.map((e) => e.id);
  const best = closest(id.toLowerCase(), ids);
  return distance(id.toLowerCase(), best) <= Math.max(3, Math.floor(best.length / 3)) ? best : null;
}

/** Resolves a `--model` argument. Never touches the network. */
export function resolveModel(arg: string, env: NodeJS.ProcessEnv = process.env): ResolvedModel {
  const entry = BY_ID.get(arg);
  if (entry) {
    const arch = entry.config ? parseModelConfig(entry.config, `zoo entry ${entry.id}`) : null;
    return { id: entry.id, source: 'zoo', entry, arch, dir: null };
  }
  if (existsSync(arg)) {
    const dir = resolve(arg);
    if (!statSync(dir).isDirectory()) throw new InputError(`${arg}: expected a model directory holding config.json, got a file`);
    return { id: arg, source: 'path', entry: null, arch: readConfigDir(dir), dir };
  }
  if (/^[\w.-]+\/[\w.-]+$/.test(arg)) {
    const snapshot = findCachedSnapshot(arg, 'main', env);
    if (snapshot) return { id: arg, source: 'hf-cache', entry: null, arch: readConfigDir(snapshot), dir: snapshot };
    throw new InputError(
      `unknown model "${arg}": not a zoo id, not a local directory, and not in the HF cache (searched ${join(hfHubCacheDir(env), repoFolderName(arg))}); ` +
        'download it with an HF tool (gated Meta repos need HF_TOKEN) or pass a local path',
    );
  }
  const hint = suggestModel(arg);
  throw new InputError(
    `unknown model "${arg}"${hint ? `; did you mean "${hint}"?` : ''} (run \`llama-eval models\` for the zoo, or pass a checkpoint directory)`,
  );
}
