// Datasets in the Hugging Face hub cache, the layout Python `huggingface_hub` writes:
//   $HF_HUB_CACHE (default $HF_HOME/hub, default ~/.cache/huggingface/hub)
//     datasets--<org>--<name>/refs/<revision>      (a file holding the commit hash; `refs/convert/parquet` nests)
//     datasets--<org>--<name>/snapshots/<commit>/  (the files, as symlinks into blobs/)
// The model-cache twin lives in runners/hf/cache.ts; suites/ may not import runners/ (DESIGN.md), so
// the few lines are repeated here for the `datasets--` prefix.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export function hfHubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  const home = env.HF_HOME ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'huggingface');
  return join(home, 'hub');
}

/** `org/name` -> the cache folder name `datasets--org--name`. */
export function datasetFolderName(repoId: string): string {
  return `datasets--${repoId.split('/').join('--')}`;
}

/** The cached snapshot directory of dataset `repoId` at `revision` (branch/tag via refs/, or a commit). */
export function findCachedDatasetSnapshot(repoId: string, revision: string, env: NodeJS.ProcessEnv = process.env): string | null {
  const repoDir = join(hfHubCacheDir(env), datasetFolderName(repoId));
  const refFile = join(repoDir, 'refs', revision);
  const commit = existsSync(refFile) ? readFileSync(refFile, 'utf8').trim() : revision;
  const snapshot = join(repoDir, 'snapshots', commit);
  return existsSync(snapshot) ? snapshot : null;
}

/** Offline when the caller says so or when HF_HUB_OFFLINE is set truthy, as huggingface_hub reads it. */
export function isOffline(offline: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  const flag = (env.HF_HUB_OFFLINE ?? '').toLowerCase();
  return offline || flag === '1' || flag === 'true' || flag === 'yes' || flag === 'on';
}
