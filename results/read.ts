// Reading records.jsonl back: the input to resume and to every report. A reader never
// throws on a bad line; it keeps every good record and says exactly which lines it skipped,
// so a run killed mid-write still yields all the work that reached the disk.
import { readFileSync } from 'node:fs';
import { checkRecord, type RunRecord } from './schema.ts';

export interface RecordProblem {
  /** 1-based line number in the file. */
  line: number;
  message: string;
}

export interface ReadResult {
  /** Valid records, in file order. */
  records: RunRecord[];
  /** Lines that were skipped, with `path:line: why`. */
  problems: RecordProblem[];
  /** The last line has no newline and does not parse: a write cut short by a crash. */
  tornTail: boolean;
}

const NEWLINE = 0x0a;

/** Reads and validates a records JSONL file. Throws only when the file cannot be read. */
export function readRecords(path: string): ReadResult {
  let buf: Buffer;
  try {
    // Split the Buffer rather than one big string: a long eval's records can exceed V8's
    // maximum string length, single lines never do.
    buf = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`records file not found: ${path}`);
    throw new Error(`cannot read records file ${path}: ${(e as Error).message}`);
  }
  const out: ReadResult = { records: [], problems: [], tornTail: false };
  let start = 0;
  for (let line = 1; start < buf.length; line++) {
    const nl = buf.indexOf(NEWLINE, start);
    const terminated = nl >= 0;
    const end = terminated ? nl : buf.length;
    const text = buf.toString('utf8', start, end);
    start = end + 1;
    // Blank lines are harmless: a writer that opened behind an in-flight append starts its
    // first record with a newline (see RecordWriter), which can leave an empty line.
    if (text.trim() === '') continue;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      if (!terminated) {
        out.tornTail = true;
        out.problems.push({
          line,
          message: `${path}:${line}: torn last line (${text.length} chars, no newline, not valid JSON); ` +
            'repairTornTail() cuts it off',
        });
      } else {
        out.problems.push({ line, message: `${path}:${line}: not valid JSON: ${(e as Error).message}` });
      }
      continue;
    }
    const r = checkRecord(json);
    if (r.ok) out.records.push(r.record);
    else out.problems.push({ line, message: `${path}:${line}: ${r.message}` });
  }
  return out;
}
