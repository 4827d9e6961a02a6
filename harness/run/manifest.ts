// The run manifest: what a reviewer needs to trust or reproduce the numbers — package and runtime
// versions, git sha (marked -dirty when the tree has changes), host, seed, the resolved config and
// the SHA-256 of every model and data file the run reads.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { ManifestRecord } from '../../results/schema.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface ManifestFile {
  role: 'model' | 'adapter' | 'data' | 'other';
  path: string;
  sha256: string;
}

// 1 MiB reads instead of the stream default 64 KiB: a 66 MB tiny-llama-3 checkpoint hashes in ~85 ms
// instead of ~110 ms (bench:run, docs/benchmarks.md), fewer callbacks for the same bytes.
const HASH_CHUNK_BYTES = 1 << 20;

export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path, { highWaterMark: HASH_CHUNK_BYTES }).on('error', reject).on('data', (chunk) => hash.update(chunk)).on('end', () => resolve(hash.digest('hex')));
  });
}

function quiet(cmd: string, args: string[]): string | null {
  try {
    return execFileSync(cmd, args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim();
  } catch {
    return null;
  }
}

export function gitSha(): string | null {
  const sha = quiet('git', ['rev-parse', 'HEAD']);
  if (sha === null || !/^[0-9a-f]{7,64}$/.test(sha)) return null;
  const dirty = quiet('git', ['status', '--porcelain', '--untracked-files=no']);
  return dirty ? `${sha}-dirty` : sha;
}

function packageVersion(name: string | null): string | null {
  try {
    const file = name === null ? `${ROOT}package.json` : createRequire(`${ROOT}package.json`).resolve(`${name}/package.json`);
    const version = (JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown }).version;
    return typeof version === 'string' ? version : null;
  } catch {
    return null;
  }
}

export interface ManifestInput {
  runId: string;
  seed: number;
  files: ManifestFile[];
  config: Record<string, unknown>;
}

export function buildManifest(input: ManifestInput): ManifestRecord {
  const cpuList = cpus();
  const gpus = quiet('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader'])?.split('\n').filter((l) => l.trim() !== '') ?? [];
  return {
    kind: 'manifest', run_id: input.runId, cell_id: 'run', time: new Date().toISOString(),
    package_version: packageVersion(null) ?? '0.0.0',
    git_sha: gitSha(),
    node_version: process.version,
    ort_version: packageVersion('onnxruntime-node'),
    host: { platform: process.platform, arch: process.arch, cpus: cpuList.length, cpu_model: cpuList[0]?.model ?? '', total_memory_bytes: totalmem(), gpus },
    seed: input.seed,
    files: input.files,
    config: input.config,
  };
}
