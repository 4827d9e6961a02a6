// The Hugging Face hub cache layout, as Python `huggingface_hub` writes it:
//   $HF_HUB_CACHE (default $HF_HOME/hub, default ~/.cache/huggingface/hub)
//     models--<org>--<name>/refs/<revision>      (a file holding the commit hash)
//     models--<org>--<name>/snapshots/<commit>/  (the checkpoint files)
// Reading it lets offline runs use checkpoints downloaded by any HF tool.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export function hfHubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  const home = env.HF_HOME ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'huggingface');
  return join(home, 'hub');
}

/** `org/name` -> the cache folder name `models--org--name`. */
export function repoFolderName(repoId: string): string {
  return `models--${repoId.split('/').join('--')}`;
}

/**
 * The snapshot directory of `repoId` at `revision` (a branch/tag name resolved through refs/, or a
 * commit hash), or null when it is not in the cache.
 */
export function findCachedSnapshot(repoId: string, revision = 'main', env: NodeJS.ProcessEnv = process.env): string | null {
  const repoDir = join(hfHubCacheDir(env), repoFolderName(repoId));
  const refFile = join(repoDir, 'refs', revision);
  const commit = existsSync(refFile) ? readFileSync(refFile, 'utf8').trim() : revision;
  const snapshot = join(repoDir, 'snapshots', commit);
  return existsSync(snapshot) ? snapshot : null;
}
