// An HF checkpoint directory and where it comes from: a `tiny-*` zoo id (generated on first use), a
// local path, the HF cache (huggingface_hub layout, see cache.ts), or — only when not offline — the
// Hub through `@huggingface/hub` with `HF_TOKEN` (gated Meta repos need it). Other zoo ids map to
// their `hfRepo`. Files read: config.json, generation_config.json, tokenizer.json,
// tokenizer_config.json, and the safetensors weights (weights.ts).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseModelConfig, type ModelArch } from '../arch.ts';
import { InputError } from '../../results/errors.ts';
import { suggestModel, zooEntry } from '../../harness/zoo.ts';
import { ensureTinyCheckpoint, isTinyId } from '../tiny.ts';
import { findCachedSnapshot, hfHubCacheDir, repoFolderName } from './cache.ts';
import { CheckpointWeights, INDEX_FILE, SINGLE_FILE } from './weights.ts';

export interface Checkpoint {
  /** The name as given (zoo id, path or repo id). */
  id: string;
  dir: string;
  source: 'tiny' | 'path' | 'hf-cache' | 'hub';
  /** Raw config.json. */
  config: Record<string, unknown>;
  arch: ModelArch;
  /** Raw generation_config.json, or null when the checkpoint has none. */
  generationConfig: Record<string, unknown> | null;
}

export interface OpenOptions {
  env?: NodeJS.ProcessEnv;
  /** Never touch the network (also on when HF_HUB_OFFLINE=1). */
  offline?: boolean;
  revision?: string;
}

function readJsonFile(file: string): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new InputError(`${file}: not valid JSON (${(error as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new InputError(`${file}: expected a JSON object`);
  return json as Record<string, unknown>;
}

/** Reads config.json (+ generation_config.json) of a checkpoint directory. */
export function readCheckpointDir(dir: string, id: string, source: Checkpoint['source']): Checkpoint {
  const configFile = join(dir, 'config.json');
  if (!existsSync(configFile)) throw new InputError(`${configFile}: not found (a model directory needs the HF config.json)`);
  const config = readJsonFile(configFile);
  const arch = parseModelConfig(config, configFile);
  const genFile = join(dir, 'generation_config.json');
  const generationConfig = existsSync(genFile) ? readJsonFile(genFile) : null;
  return { id, dir, source, config, arch, generationConfig };
}

export function isOffline(options: OpenOptions): boolean {
  const env = options.env ?? process.env;
  return options.offline === true || env.HF_HUB_OFFLINE === '1' || env.LLAMA_EVAL_OFFLINE === '1';
}

/**
 * Resolves `--model` to a local checkpoint directory without the network, or null when it would
 * have to be downloaded (an HF repo id or non-tiny zoo id missing from the cache).
 */
export function resolveLocalCheckpoint(arg: string, options: OpenOptions = {}): Checkpoint | { download: string } {
  const env = options.env ?? process.env;
  if (isTinyId(arg)) return readCheckpointDir(ensureTinyCheckpoint(arg, { env }), arg, 'tiny');
  const entry = zooEntry(arg);
  if (!entry && existsSync(arg)) {
    const dir = resolve(arg);
    if (!statSync(dir).isDirectory()) {
      // Accept a path to a file inside the checkpoint (e.g. config.json) for convenience.
      return readCheckpointDir(dirname(dir), arg, 'path');
    }
    return readCheckpointDir(dir, arg, 'path');
  }
  const repo = entry ? entry.hfRepo : arg;
  if (!/^[\w.-]+\/[\w.-]+$/.test(repo)) {
    const hint = suggestModel(arg);
    throw new InputError(`unknown model "${arg}"${hint ? `; did you mean "${hint}"?` : ''} (not a zoo id, a local directory, or an HF repo id org/name)`);
  }
  const snapshot = findCachedSnapshot(repo, options.revision ?? 'main', env);
  if (snapshot) return readCheckpointDir(snapshot, arg, 'hf-cache');
  return { download: repo };
}

// Files fetched from the Hub: config, tokenizer, and safetensors weights (not `original/*.pth`).
const HUB_FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'];

async function downloadFromHub(repo: string, options: OpenOptions): Promise<string> {
  const env = options.env ?? process.env;
  const hub = await import('@huggingface/hub');
  const credentials = env.HF_TOKEN ? { accessToken: env.HF_TOKEN } : {};
  const cacheDir = hfHubCacheDir(env);
  const revision = options.revision ?? 'main';
  const get = (path: string) => hub.downloadFileToCacheDir({ repo, path, revision, cacheDir, ...credentials });
  let configPath: string;
  try {
    configPath = await get('config.json');
  } catch (error) {
    const gated = env.HF_TOKEN ? '' : ' Gated repos (all meta-llama/*) need HF_TOKEN set to a token that accepted the license.';
    throw new InputError(`cannot download ${repo} from the Hugging Face Hub (${(error as Error).message}).${gated}`);
  }
  for (const file of HUB_FILES.slice(1)) {
    if (await hub.fileExists({ repo, path: file, revision, ...credentials })) await get(file);
  }
  if (await hub.fileExists({ repo, path: INDEX_FILE, revision, ...credentials })) {
    const indexPath = await get(INDEX_FILE);
    const index = readJsonFile(indexPath) as { weight_map?: Record<string, string> };
    for (const shard of new Set(Object.values(index.weight_map ?? {}))) await get(shard);
  } else {
    await get(SINGLE_FILE);
  }
  return dirname(configPath);
}

/** Opens a checkpoint, downloading it from the Hub when it is not local and the run is online. */
export async function openCheckpoint(arg: string, options: OpenOptions = {}): Promise<Checkpoint> {
  const local = resolveLocalCheckpoint(arg, options);
  if (!('download' in local)) return local;
  const env = options.env ?? process.env;
  const searched = join(hfHubCacheDir(env), repoFolderName(local.download));
  if (isOffline(options)) {
    throw new InputError(`model "${arg}" (${local.download}) is not in the HF cache (searched ${searched}) and the run is offline; download it first or pass a local path`);
  }
  return readCheckpointDir(await downloadFromHub(local.download, options), arg, 'hub');
}

export function openWeights(checkpoint: Checkpoint): CheckpointWeights {
  return CheckpointWeights.open(checkpoint.dir);
}
