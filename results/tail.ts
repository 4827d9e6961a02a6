// Torn-tail handling. A process killed in the middle of a write (or a full disk) can leave
// the last line of records.jsonl without its newline; appending to it would glue the next
// record onto the fragment and lose both. Repair = cut the file back to its last newline.
import { closeSync, fstatSync, ftruncateSync, openSync, readSync } from 'node:fs';

const NEWLINE = 0x0a;
const CHUNK = 64 * 1024;

/** Offset just past the last '\n' of the first `size` bytes (0 when there is none). */
export function lastLineEnd(fd: number, size: number): number {
  // Scan backwards in chunks: records files grow large and the tail is all we need.
  const buf = Buffer.alloc(Math.min(CHUNK, size));
  let end = size;
  while (end > 0) {
    const start = Math.max(0, end - buf.length);
    const n = readSync(fd, buf, 0, end - start, start);
    const i = buf.subarray(0, n).lastIndexOf(NEWLINE);
    if (i >= 0) return start + i + 1;
    end = start;
  }
  return 0;
}

/** True when the file is empty or its last byte is '\n'. */
export function endsCleanly(fd: number, size: number): boolean {
  if (size === 0) return true;
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, size - 1);
  return b[0] === NEWLINE;
}

/**
 * Truncates an open file to the end of its last complete line; returns the bytes removed.
 * `expectedSize` guards against a concurrent appender: if the file changed size since the
 * caller looked, the tail is someone's fresh write, not a crash fragment, and is left alone.
 */
export function truncateTornTail(fd: number, expectedSize?: number): number {
  const size = fstatSync(fd).size;
  if (expectedSize !== undefined && size !== expectedSize) return 0;
  if (endsCleanly(fd, size)) return 0;
  const keep = lastLineEnd(fd, size);
  ftruncateSync(fd, keep);
  return size - keep;
}

/**
 * Cuts `path` back to the end of its last complete line so an append after a crash starts on
 * a fresh line. Returns the number of bytes removed (0 when the file is clean or missing).
 * Call it only while no other process is appending (e.g. before a resumed run spawns
 * cells): an append in flight looks exactly like a torn tail. RecordWriter.open applies a
 * guarded version of this itself.
 */
export function repairTornTail(path: string): number {
  let fd: number;
  try {
    fd = openSync(path, 'r+');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw new Error(`cannot open records file ${path} to repair it: ${(e as Error).message}`);
  }
  try {
    return truncateTornTail(fd);
  } finally {
    closeSync(fd);
  }
}
