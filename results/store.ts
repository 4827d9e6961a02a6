// The JSONL record store. Many processes (one per cell) append to one records.jsonl, so the
// only safe primitive is: open with O_APPEND, write each whole line in ONE write(2). The
// kernel then places every line at the current end of file as a unit, and lines from
// different processes never interleave. Nothing here ever truncates a complete line.
import { closeSync, fstatSync, fsyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { parseRecord, type RunRecord } from './schema.ts';
import { endsCleanly, truncateTornTail } from './tail.ts';

export { readRecords, type ReadResult, type RecordProblem } from './read.ts';
export { repairTornTail } from './tail.ts';

export interface RecordWriterOptions {
  /**
   * A torn tail whose file was last modified at least this long ago (ms) is a crash
   * fragment and is cut off on open; a younger one may be another process's append still
   * in flight, so it is left alone and this writer starts on a fresh line instead.
   */
  staleTailMs?: number;
}

const DEFAULT_STALE_TAIL_MS = 2000;

/** Appends validated records to a JSONL file, one line each. Synchronous by design. */
export class RecordWriter {
  readonly path: string;
  private fd: number | null;
  // Set when the file may end mid-line: the next record then begins with '\n' so it is
  // never glued onto the fragment (at worst this leaves a blank line, which readers skip).
  private freshLine = false;

  constructor(path: string, options: RecordWriterOptions = {}) {
    this.path = path;
    mkdirSync(dirname(path), { recursive: true });
    // a+ = O_RDWR|O_APPEND|O_CREAT: appends, never truncates, and lets us inspect the tail.
    this.fd = openSync(path, 'a+');
    try {
      this.resumeCleanly(options.staleTailMs ?? DEFAULT_STALE_TAIL_MS);
    } catch (e) {
      closeSync(this.fd);
      throw new Error(`cannot open records file ${path}: ${(e as Error).message}`);
    }
  }

  private resumeCleanly(staleTailMs: number): void {
    const fd = this.fd as number;
    const st = fstatSync(fd);
    if (endsCleanly(fd, st.size)) return;
    // Another writer's append updates mtime when it starts, so an old mtime means no write
    // is in flight and the unterminated tail is left over from a crash.
    if (Date.now() - st.mtimeMs >= staleTailMs) truncateTornTail(fd, st.size);
    this.freshLine = !endsCleanly(fd, fstatSync(fd).size);
  }

  /** Validates `record` (throws naming the bad field) and appends it as one line. */
  write(record: RunRecord): RunRecord {
    if (this.fd === null) throw new Error(`records file ${this.path} is closed; cannot write`);
    let valid: RunRecord;
    try {
      valid = parseRecord(record);
    } catch (e) {
      throw new Error(`refusing to write to ${this.path}: ${(e as Error).message}`);
    }
    // JSON.stringify escapes '\n' inside strings, so the record is exactly one line.
    const line = Buffer.from(`${this.freshLine ? '\n' : ''}${JSON.stringify(valid)}\n`, 'utf8');
    const n = writeSync(this.fd, line, 0, line.length);
    if (n !== line.length) {
      // Retrying the remainder would be a second write that another process could
      // interleave with; leave the fragment for readers to report and start afresh.
      this.freshLine = true;
      throw new Error(`short write to ${this.path}: ${n} of ${line.length} bytes (disk full?)`);
    }
    this.freshLine = false;
    return valid;
  }

  /** Flushes written records to stable storage. */
  sync(): void {
    if (this.fd !== null) fsyncSync(this.fd);
  }

  /** fsyncs and closes; idempotent. */
  close(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}

/** Opens, appends `records` and closes: for one-off writes such as a crashed cell's error. */
export function appendRecords(path: string, records: readonly RunRecord[]): void {
  const w = new RecordWriter(path);
  try {
    for (const r of records) w.write(r);
  } finally {
    w.close();
  }
}

/**
 * Writes `value` as pretty JSON via a temp file + rename, so readers see the old file or
 * the new one, never half of one (results.json, summaries).
 */
export function writeJsonAtomic(path: string, value: unknown): void {
  const json = JSON.stringify(value, null, 2);
  if (json === undefined) throw new Error(`cannot write ${path}: value is not JSON-serializable`);
  mkdirSync(dirname(path), { recursive: true });
  writeFileAtomic.sync(path, `${json}\n`, { fsync: true });
}
