// Opening the history store. DuckDB lets one process hold a database file for writing (its own
// file lock), so every use is short: open, do one thing, close. A second process that finds the
// file locked retries with backoff instead of failing, which is what makes two `run`s finishing at
// once safe. Within one process the file lock does not exclude a second handle, so uses of a path
// are also queued in-process.
import { existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { InputError } from '../../results/errors.ts';
import { ensureSchema, SchemaVersionError } from './schema.ts';

/** `$XDG_CACHE_HOME/llama-eval/history.duckdb`, else `~/.cache/llama-eval/history.duckdb`. */
export function defaultHistoryPath(env: NodeJS.ProcessEnv = process.env): string {
  const cache = env.XDG_CACHE_HOME !== undefined && env.XDG_CACHE_HOME !== '' ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(cache, 'llama-eval', 'history.duckdb');
}

export interface StoreOptions {
  /** Open with DuckDB's READ_ONLY access mode and no file-system access from SQL. */
  readOnly?: boolean;
  /** How long to keep retrying while another process holds the file (default 60 s). */
  lockTimeoutMs?: number;
  /** Called before each wait for another process's lock (progress output, tests). */
  onLockWait?: (attempt: number, delayMs: number) => void;
}

const WRITTEN_BY = 'llama-eval';
const LOCK_ERROR = /Could not set lock on file/;
const CORRUPT_ERROR = /not a valid DuckDB database file|Corrupt database file|checksum|Could not read enough bytes|Serialization Error/i;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Any failure that means the file itself is damaged becomes an InputError naming it. */
function corruptStore(path: string, e: unknown): InputError | null {
  const msg = e instanceof Error ? e.message : String(e);
  if (!CORRUPT_ERROR.test(msg)) return null;
  return new InputError(
    `history store ${path} is corrupt or not a DuckDB file (${msg.split('\n')[0]}); move it aside (or pass another --db) ` +
      'and ingest the run directories again: their records.jsonl files are the source of truth',
  );
}

async function openInstance(path: string, options: StoreOptions): Promise<DuckDBInstance> {
  const settings: Record<string, string> = options.readOnly
    ? { access_mode: 'READ_ONLY', enable_external_access: 'false' }
    : {};
  const deadline = Date.now() + (options.lockTimeoutMs ?? 60_000);
  let delay = 20;
  for (let attempt = 1; ; attempt++) {
    try {
      return await DuckDBInstance.create(path, settings);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      if (LOCK_ERROR.test(msg)) {
        if (Date.now() < deadline) {
          // Jitter keeps two waiters from retrying in lockstep.
          const wait = delay + Math.random() * delay;
          options.onLockWait?.(attempt, wait);
          await sleep(wait);
          delay = Math.min(delay * 2, 500);
          continue;
        }
        throw new InputError(
          `history store ${path} is still locked by another process after ${options.lockTimeoutMs ?? 60_000} ms ` +
            `(${msg.split('\n')[0]}); wait for it to finish or pass another --db`,
        );
      }
      throw corruptStore(path, e) ?? new InputError(`cannot open history store ${path}: ${msg.split('\n')[0]}`);
    }
  }
}

const queues = new Map<string, Promise<unknown>>();

/**
 * Runs `work` with a connection to the store at `path` (created and given the current schema when
 * writable), then closes it. Throws InputError for a missing (read-only), corrupt, foreign or
 * wrong-version store, each naming the path.
 */
export async function withHistoryStore<T>(path: string, options: StoreOptions, work: (conn: DuckDBConnection) => Promise<T>): Promise<T> {
  const key = resolve(path);
  const previous = queues.get(key) ?? Promise.resolve();
  const mine = previous.catch(() => undefined).then(() => useStore(key, path, options, work));
  queues.set(key, mine);
  try {
    return await mine;
  } finally {
    if (queues.get(key) === mine) queues.delete(key);
  }
}

async function useStore<T>(key: string, path: string, options: StoreOptions, work: (conn: DuckDBConnection) => Promise<T>): Promise<T> {
  if (options.readOnly) {
    if (!existsSync(key)) throw new InputError(`no history store at ${path}; run \`llama-eval history ingest <run dirs>\` first, or pass --db`);
  } else {
    mkdirSync(dirname(key), { recursive: true });
  }
  const instance = await openInstance(key, options);
  let conn: DuckDBConnection | null = null;
  try {
    conn = await instance.connect();
    try {
      await ensureSchema(conn, WRITTEN_BY, options.readOnly === true);
    } catch (e) {
      if (e instanceof SchemaVersionError) throw new InputError(`history store ${path} ${e.message}`);
      throw e;
    }
    return await work(conn);
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw corruptStore(path, e) ?? e;
  } finally {
    conn?.closeSync();
    instance.closeSync();
  }
}
