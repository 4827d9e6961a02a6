// Where a task's documents come from, in order: `--data <path>`, the sample bundled in suites/data/,
// the HF hub cache, then the Hub itself (only when not offline). A task with nothing bundled that is
// offline and uncached is skipped with a reason naming the repo and how to fetch it, never scored zero.
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { downloadFileToCacheDir } from '@huggingface/hub';
import { InputError } from '../../results/errors.ts';
import type { LoadOutcome, TaskLoadOptions } from '../types.ts';
import { dataHash, sha256File } from './hash.ts';
import { findCachedDatasetSnapshot, hfHubCacheDir, isOffline } from './hf-cache.ts';

/** suites/data/, where the bundled samples live (with their SOURCE.md). */
export const BUNDLED_DATA_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'data');

export interface HubFiles {
  /** Dataset repo id, e.g. `Rowan/hellaswag`. */
  repo: string;
  /** Branch, tag or commit; `refs/convert/parquet` is the Hub's own parquet export. */
  revision: string;
  /** Paths inside the repo, in the order `parse` expects them. */
  files: readonly string[];
}

export interface ParsedDocs<D> {
  docs: D[];
  /** Further files the parser read (a prompt template), for the manifest's hashes. */
  alsoRead?: string[];
}

export interface DataSpec<D> {
  task: string;
  /** A folder under suites/data and the file names in it, e.g. { dir: 'medical/pubmedqa', files: [...] }. */
  bundled?: { dir: string; files: readonly string[] };
  hub?: HubFiles;
  /** Turns one source's files (absolute paths, in the order listed; `--data <file>` gives just that one) into documents. */
  parse(paths: string[]): Promise<D[] | ParsedDocs<D>>;
}

export async function loadDocs<D>(spec: DataSpec<D>, options: TaskLoadOptions): Promise<LoadOutcome<D>> {
  const env = options.env ?? process.env;
  if (options.limit !== undefined && (!Number.isInteger(options.limit) || options.limit < 1)) {
    throw new InputError(`--limit ${options.limit}: expected a positive integer`);
  }
  const found = options.dataPath !== undefined ? fromDataPath(spec, options.dataPath) : await fromDefaultSources(spec, options, env);
  if ('status' in found) return found;
  const parsed = await spec.parse(found.paths);
  const all = Array.isArray(parsed) ? parsed : parsed.docs;
  const alsoRead = Array.isArray(parsed) ? [] : (parsed.alsoRead ?? []);
  const docs = options.limit === undefined ? all : all.slice(0, options.limit);
  const files = await Promise.all([...found.paths, ...alsoRead].map(async (path) => ({ path, sha256: await sha256File(path) })));
  return { status: 'loaded', docs, files, dataHash: dataHash(docs), source: found.source };
}

interface Found {
  paths: string[];
  source: string;
}

function fromDataPath<D>(spec: DataSpec<D>, dataPath: string): Found {
  const path = resolve(dataPath);
  if (!existsSync(path)) throw new InputError(`--data ${dataPath}: no such file or directory; give a ${spec.task} data file or a folder holding one`);
  if (statSync(path).isFile()) return { paths: [path], source: `--data ${dataPath}` };
  // A folder: the bundled layout first (same file names), then the Hub layout (same relative paths).
  const candidates = [spec.bundled?.files, spec.hub?.files].filter((f): f is readonly string[] => f !== undefined);
  for (const names of candidates) {
    const paths = names.map((n) => join(path, n));
    if (paths.every(existsSync)) return { paths, source: `--data ${dataPath}` };
    const flat = names.map((n) => join(path, basename(n)));
    if (flat.every(existsSync)) return { paths: flat, source: `--data ${dataPath}` };
  }
  const expected = candidates.map((names) => names.join(' + ')).join(' or ');
  throw new InputError(`--data ${dataPath}: no ${spec.task} data in this folder; expected ${expected || 'a data file'}`);
}

async function fromDefaultSources<D>(spec: DataSpec<D>, options: TaskLoadOptions, env: NodeJS.ProcessEnv): Promise<Found | { status: 'skipped'; reason: string }> {
  if (spec.bundled) {
    const dir = join(BUNDLED_DATA_DIR, spec.bundled.dir);
    return { paths: spec.bundled.files.map((f) => join(dir, f)), source: `bundled sample (suites/data/${spec.bundled.dir})` };
  }
  const hub = spec.hub;
  if (!hub) throw new Error(`task ${spec.task} declares no data source`);
  const snapshot = findCachedDatasetSnapshot(hub.repo, hub.revision, env);
  if (snapshot && hub.files.every((f) => existsSync(join(snapshot, f)))) {
    return { paths: hub.files.map((f) => join(snapshot, f)), source: `HF cache ${hub.repo}@${basename(snapshot)}` };
  }
  const fetchHint = `huggingface-cli download --repo-type dataset ${hub.repo} ${hub.files.join(' ')} --revision ${hub.revision}`;
  if (isOffline(options.offline, env)) {
    return {
      status: 'skipped',
      reason: `${spec.task}: no bundled sample and ${hub.repo} is not in the HF cache (${hfHubCacheDir(env)}) while offline; fetch it with \`${fetchHint}\`, run online, or pass --data <local copy>`,
    };
  }
  const paths: string[] = [];
  for (const file of hub.files) {
    try {
      paths.push(
        await downloadFileToCacheDir({
          repo: { type: 'dataset', name: hub.repo },
          path: file,
          revision: hub.revision,
          cacheDir: hfHubCacheDir(env),
          // HF_ENDPOINT: a mirror or a private hub, as huggingface_hub reads it.
          ...(env.HF_ENDPOINT ? { hubUrl: env.HF_ENDPOINT } : {}),
          ...(env.HF_TOKEN ? { accessToken: env.HF_TOKEN } : {}),
        }),
      );
    } catch (e) {
      throw new InputError(
        `${spec.task}: could not download ${hub.repo}/${file}@${hub.revision} (${(e as Error).message}); set HF_TOKEN if the dataset is gated, or fetch it with \`${fetchHint}\``,
      );
    }
  }
  const shown = paths[0] ? relative(hfHubCacheDir(env), paths[0]).split('/')[2] ?? hub.revision : hub.revision;
  return { paths, source: `HF Hub ${hub.repo}@${shown}` };
}
