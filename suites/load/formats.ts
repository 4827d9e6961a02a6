// Readers for the upstream file formats, each yielding rows with where they came from, so a malformed
// row is reported as `file:line` (JSONL, CSV/TSV) or `file row N` (JSON array, parquet). Parsing into
// a task's document type happens in the task's own parser, through `field`/`rowError` below.
import { readFile } from 'node:fs/promises';
import { dsvFormat } from 'd3-dsv';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { InputError } from '../../results/errors.ts';

export interface LocatedRow {
  row: Record<string, unknown>;
  /** `path:N` (JSONL line) or `path row N` (JSON array, CSV/TSV, parquet; 1-based), for error messages. */
  where: string;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

async function readText(path: string): Promise<string> {
  return (await readFile(path, 'utf8')).replace(/^\uFEFF/, '');
}

/** A JSON array of objects (the LLM-Adapters dataset files). */
export async function readJsonArray(path: string): Promise<LocatedRow[]> {
  const value = await readJsonValue(path);
  if (!Array.isArray(value)) throw new InputError(`${path}: expected a JSON array of objects, got ${typeof value}; point --data at the upstream test.json`);
  return value.map((row: unknown, i) => {
    if (!isRecord(row)) throw new InputError(`${path} row ${i + 1}: expected a JSON object, got ${JSON.stringify(row)?.slice(0, 60)}`);
    return { row, where: `${path} row ${i + 1}` };
  });
}

/** Any JSON document (PubMedQA's objects keyed by PubMed id). */
export async function readJsonValue(path: string): Promise<unknown> {
  const text = await readText(path);
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new InputError(`${path}: not valid JSON (${(e as Error).message}); expected the upstream file unchanged`);
  }
}

/**
 * The top-level keys of a JSON object in file order. JSON.parse orders integer-like keys numerically
 * (PubMed ids are), while upstream (Python dicts) and `--limit N` mean the file's order.
 */
export function topLevelKeysInOrder(text: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (depth === 1) {
        let k = j + 1;
        while (k < text.length && /\s/.test(text[k] as string)) k++;
        if (text[k] === ':') keys.push(JSON.parse(text.slice(i, j + 1)) as string);
      }
      i = j;
    } else if (ch === '{' || ch === '[') depth++;
    else if (ch === '}' || ch === ']') depth--;
  }
  return keys;
}

/** A JSON object and its top-level keys in file order. */
export async function readJsonObjectOrdered(path: string): Promise<{ value: Record<string, unknown>; keys: string[] } | null> {
  const text = await readText(path);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new InputError(`${path}: not valid JSON (${(e as Error).message}); expected the upstream file unchanged`);
  }
  if (!isRecord(value)) return null;
  return { value, keys: topLevelKeysInOrder(text) };
}

/** One JSON object a line; blank lines are skipped (a trailing newline is common). */
export async function readJsonl(path: string): Promise<LocatedRow[]> {
  const lines = (await readText(path)).split(/\r?\n/);
  const rows: LocatedRow[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${path}:${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw new InputError(`${where}: not valid JSON (${(e as Error).message}); expected one JSON object per line`);
    }
    if (!isRecord(value)) throw new InputError(`${where}: expected a JSON object per line`);
    rows.push({ row: value, where });
  });
  return rows;
}

/**
 * CSV or TSV with RFC 4180 quoting (d3-dsv). `columns` names headerless files' columns (MMLU);
 * without it the first line is the header. Rows are numbered from 1 after any header: a quoted field
 * may span lines (LegalBench contracts), so physical line numbers would mislead.
 */
export async function readDelimited(path: string, delimiter: ',' | '\t', columns?: readonly string[]): Promise<LocatedRow[]> {
  const records = dsvFormat(delimiter).parseRows(await readText(path)).filter((r) => !(r.length === 1 && r[0] === ''));
  const header = columns ?? records[0];
  if (!header) throw new InputError(`${path}: empty file; expected a ${delimiter === ',' ? 'CSV' : 'TSV'} with a header row`);
  return records.slice(columns ? 0 : 1).map((cells, i) => {
    const where = `${path} row ${i + 1}`;
    if (cells.length !== header.length) {
      throw new InputError(`${where}: ${cells.length} columns, expected ${header.length} (${header.join(', ')})`);
    }
    const row: Record<string, unknown> = {};
    header.forEach((name, c) => (row[name] = cells[c]));
    return { row, where };
  });
}

/**
 * A parquet file (HF Hub datasets), read with hyparquet. String columns carry the UTF8/STRING
 * annotation and come back as strings; un-annotated BYTE_ARRAY columns (pyarrow's `binary`, e.g. the
 * bytes of HF datasets' Image feature, a `{bytes, path}` struct) come back as Uint8Array: hyparquet's
 * default `utf8: true` would decode those bytes as UTF-8 text, which destroys them. BigInt cells
 * become numbers.
 */
export async function readParquet(path: string): Promise<LocatedRow[]> {
  let objects: Record<string, unknown>[];
  try {
    objects = await parquetReadObjects({ file: await asyncBufferFromFile(path), utf8: false });
  } catch (e) {
    throw new InputError(`${path}: not a readable parquet file (${(e as Error).message}); expected the Hub's parquet file unchanged`);
  }
  return objects.map((row, i) => ({ row: normalizeBigInts(row) as Record<string, unknown>, where: `${path} row ${i + 1}` }));
}

/** Only plain objects (parquet structs) are walked: a Uint8Array or Date cell is a value, not a record. */
function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (!isRecord(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

function normalizeBigInts(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map(normalizeBigInts);
  if (isPlainObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalizeBigInts(x)]));
  return v;
}

export function rowError(where: string, message: string): InputError {
  return new InputError(`${where}: ${message}`);
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A required string field. Bytes are decoded as UTF-8: a parquet writer that leaves a text column
 * un-annotated (plain BYTE_ARRAY) gives it as bytes now that readParquet keeps binary columns binary.
 */
export function str(r: LocatedRow, name: string): string {
  const v = r.row[name];
  if (v instanceof Uint8Array) {
    try {
      return strictUtf8.decode(v);
    } catch {
      throw rowError(r.where, `field "${name}" is binary data, not UTF-8 text; expected a string column`);
    }
  }
  if (typeof v !== 'string') throw rowError(r.where, `field "${name}" missing or not a string (got ${JSON.stringify(v)?.slice(0, 40) ?? 'nothing'})`);
  return v;
}

/** A required integer field (numbers or numeric strings, as CSV and parquet give them). */
export function int(r: LocatedRow, name: string): number {
  const v = r.row[name];
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isInteger(n)) throw rowError(r.where, `field "${name}" missing or not an integer (got ${JSON.stringify(v)?.slice(0, 40) ?? 'nothing'})`);
  return n;
}

/** A required list of strings. */
export function strList(r: LocatedRow, name: string): string[] {
  const v = r.row[name];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
    throw rowError(r.where, `field "${name}" missing or not a list of strings`);
  }
  return v as string[];
}

/** Reads a file by its extension (.json array, .jsonl, .csv, .tsv, .parquet). */
export async function readRows(path: string): Promise<LocatedRow[]> {
  if (path.endsWith('.jsonl')) return readJsonl(path);
  if (path.endsWith('.json')) return readJsonArray(path);
  if (path.endsWith('.csv')) return readDelimited(path, ',');
  if (path.endsWith('.tsv')) return readDelimited(path, '\t');
  if (path.endsWith('.parquet')) return readParquet(path);
  throw new InputError(`${path}: unknown data format; expected .json, .jsonl, .csv, .tsv or .parquet`);
}
