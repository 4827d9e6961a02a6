import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { MetricRecord, SampleRecord } from '../../results/schema.ts';
import {
  appendRecords, readRecords, RecordWriter, repairTornTail, writeJsonAtomic,
} from '../../results/store.ts';

const STORE_URL = pathToFileURL(resolve('results/store.ts')).href;

function metric(i: number): MetricRecord {
  return {
    kind: 'metric', run_id: 'r1', cell_id: `c${i % 3}`, time: new Date(Date.UTC(2025, 0, 1, 0, 0, i)).toISOString(),
    task: 'boolq', metric: 'acc', value: i / 100, stderr: null, n: i, model: 'tiny-llama-2', peft: null,
  };
}

let dir: string;
let file: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'llama-eval-store-'));
  file = join(dir, 'nested', 'records.jsonl');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Backdates the file so a writer treats its torn tail as a crash leftover. */
function age(path: string): void {
  const past = new Date(Date.now() - 60_000);
  utimesSync(path, past, past);
}

describe('RecordWriter + readRecords', () => {
  it('creates the directory and reads N records back in order, one line each', () => {
    const w = new RecordWriter(file);
    const written = Array.from({ length: 50 }, (_, i) => w.write(metric(i)));
    w.close();
    w.close(); // idempotent
    const text = readFileSync(file, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    expect(text.split('\n')).toHaveLength(51);
    const r = readRecords(file);
    expect(r).toEqual({ records: written, problems: [], tornTail: false });
  });

  it('keeps newlines inside strings on one line', () => {
    const s: SampleRecord = {
      kind: 'sample', run_id: 'r1', cell_id: 'c', time: '2025-01-01T00:00:00Z', task: 'gsm8k', doc_id: 0,
      prompt_hash: 'h', target: '42', response: 'line one\nline two\r\n\u2028', metrics: { exact_match: 1 },
    };
    appendRecords(file, [s]);
    expect(readFileSync(file, 'utf8').split('\n')).toHaveLength(2);
    expect(readRecords(file).records).toEqual([s]);
  });

  it('appends to an existing file and never truncates it', () => {
    appendRecords(file, [metric(0), metric(1)]);
    appendRecords(file, [metric(2)]);
    expect(readRecords(file).records.map((r) => r.kind === 'metric' && r.n)).toEqual([0, 1, 2]);
  });

  it('refuses an invalid record, naming the file and the field, and writes nothing', () => {
    const w = new RecordWriter(file);
    const bad = { ...metric(0), value: 'high' } as unknown as MetricRecord;
    expect(() => w.write(bad)).toThrow(new RegExp(`${file}.*invalid metric record: value:`));
    w.close();
    expect(readFileSync(file, 'utf8')).toBe('');
    expect(() => w.write(metric(1))).toThrow(/closed/);
  });

  it('reports a torn last line and keeps every complete record', () => {
    appendRecords(file, [metric(0), metric(1), metric(2)]);
    const half = JSON.stringify(metric(3)).slice(0, 40);
    appendFileSync(file, half);
    const r = readRecords(file);
    expect(r.records).toHaveLength(3);
    expect(r.tornTail).toBe(true);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]?.line).toBe(4);
    expect(r.problems[0]?.message).toMatch(new RegExp(`^${file}:4: torn last line`));
  });

  it('repairTornTail then append gives a valid file', () => {
    appendRecords(file, [metric(0), metric(1)]);
    const sizeClean = statSync(file).size;
    const fragment = '{"kind":"metric","run_id":"r1","ce';
    appendFileSync(file, fragment);
    expect(repairTornTail(file)).toBe(fragment.length);
    expect(statSync(file).size).toBe(sizeClean);
    expect(repairTornTail(file)).toBe(0); // clean file: nothing to do
    expect(repairTornTail(join(dir, 'missing.jsonl'))).toBe(0);
    appendRecords(file, [metric(2)]);
    expect(readRecords(file)).toEqual({ records: [metric(0), metric(1), metric(2)], problems: [], tornTail: false });
  });

  it('cuts a whole-file fragment back to empty', () => {
    const f = join(dir, 'flat.jsonl');
    writeFileSync(f, '{"kind":');
    expect(repairTornTail(f)).toBe(8);
    expect(readFileSync(f, 'utf8')).toBe('');
  });

  it('repairs a stale torn tail when a writer opens the file (resume after a crash)', () => {
    appendRecords(file, [metric(0)]);
    appendFileSync(file, JSON.stringify(metric(1)).slice(0, 30));
    age(file);
    appendRecords(file, [metric(2)]);
    expect(readRecords(file)).toEqual({ records: [metric(0), metric(2)], problems: [], tornTail: false });
  });

  it('does not cut a fresh unterminated tail (maybe an append in flight) but starts on a new line', () => {
    appendRecords(file, [metric(0)]);
    appendFileSync(file, '{"kind":"met');
    appendRecords(file, [metric(1)]);
    const r = readRecords(file);
    expect(r.records).toEqual([metric(0), metric(1)]);
    expect(r.tornTail).toBe(false);
    expect(r.problems.map((p) => p.line)).toEqual([2]);
    expect(r.problems[0]?.message).toContain(':2: not valid JSON');
  });

  it('treats an unterminated but complete last line as a record', () => {
    const f = join(dir, 'flat.jsonl');
    writeFileSync(f, `${JSON.stringify(metric(0))}\n${JSON.stringify(metric(1))}`);
    expect(readRecords(f)).toEqual({ records: [metric(0), metric(1)], problems: [], tornTail: false });
  });

  it('reports malformed and schema-invalid middle lines with their line numbers and skips them', () => {
    const lines = [
      JSON.stringify(metric(0)),
      '{not json',
      JSON.stringify({ ...metric(1), stderr: 'big' }),
      '',
      JSON.stringify(metric(2)),
    ];
    const f = join(dir, 'flat.jsonl');
    writeFileSync(f, `${lines.join('\n')}\n`);
    const r = readRecords(f);
    expect(r.records).toEqual([metric(0), metric(2)]);
    expect(r.tornTail).toBe(false);
    expect(r.problems.map((p) => p.line)).toEqual([2, 3]);
    expect(r.problems[0]?.message).toMatch(/:2: not valid JSON/);
    expect(r.problems[1]?.message).toMatch(/:3: invalid metric record: stderr:/);
  });

  it('throws a clear error for a missing file', () => {
    expect(() => readRecords(join(dir, 'nope.jsonl'))).toThrow(`records file not found: ${join(dir, 'nope.jsonl')}`);
  });

  it('keeps every line whole when several processes append concurrently', async () => {
    const procs = 6;
    const each = 300;
    const script = join(dir, 'append-child.mts');
    // .mts: the temp dir has no package.json saying "module". Lines of varying length, several KiB each, so many straddle page boundaries: a writer
    // that split a line over two write calls would interleave here.
    writeFileSync(script, `
      import { RecordWriter } from ${JSON.stringify(STORE_URL)};
      const [file, id, each, startAt] = process.argv.slice(2);
      while (Date.now() < Number(startAt)) await new Promise((r) => setTimeout(r, 5));
      const w = new RecordWriter(file);
      for (let i = 0; i < Number(each); i++) {
        w.write({
          kind: 'sample', run_id: 'r1', cell_id: 'p' + id, time: new Date().toISOString(), task: 't',
          doc_id: i, prompt_hash: 'h', target: 'x'.repeat(1000 + ((i * 977 + Number(id) * 131) % 7000)),
          metrics: { acc: 1 },
        });
      }
      w.close();
    `);
    const startAt = Date.now() + 3000; // all children start writing at once, after tsx boots
    const exits = Array.from({ length: procs }, (_, id) => new Promise<number | null>((done, fail) => {
      const child = spawn(process.execPath, ['--import', 'tsx', script, file, String(id), String(each), String(startAt)], {
        cwd: process.cwd(), stdio: ['ignore', 'inherit', 'inherit'],
      });
      child.on('error', fail);
      child.on('exit', done);
    }));
    expect(await Promise.all(exits)).toEqual(Array(procs).fill(0));

    const all = readFileSync(file, 'utf8').split('\n');
    expect(all.pop()).toBe('');
    // A writer that opens while another's append is visibly in flight starts on a fresh line
    // (store.ts), which can leave one blank separator line per writer — never a glued record.
    const lines = all.filter((l) => l !== '');
    expect(all.length - lines.length).toBeLessThanOrEqual(procs);
    expect(lines).toHaveLength(procs * each);
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
    const r = readRecords(file);
    expect(r.problems).toEqual([]);
    expect(r.records).toHaveLength(procs * each);
    // Each process's records arrive in the order it wrote them.
    for (let id = 0; id < procs; id++) {
      const docs = r.records.flatMap((x) => (x.kind === 'sample' && x.cell_id === `p${id}` ? [x.doc_id] : []));
      expect(docs).toEqual(Array.from({ length: each }, (_, i) => i));
    }
    // The children really overlapped (otherwise this test proves nothing).
    const firstOwner = r.records.slice(0, each).map((x) => x.cell_id);
    expect(new Set(firstOwner).size).toBeGreaterThan(1);
  });
});

describe('writeJsonAtomic', () => {
  it('writes pretty JSON, creating directories, and replaces the old file whole', () => {
    const out = join(dir, 'a', 'b', 'results.json');
    writeJsonAtomic(out, { ok: true, n: 1 });
    writeJsonAtomic(out, { ok: false, rows: [1, 2] });
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual({ ok: false, rows: [1, 2] });
    expect(readFileSync(out, 'utf8').endsWith('}\n')).toBe(true);
  });

  it('refuses a value that is not JSON and leaves no file', () => {
    const out = join(dir, 'x.json');
    expect(() => writeJsonAtomic(out, undefined)).toThrow(/x\.json.*not JSON-serializable/);
    expect(existsSync(out)).toBe(false);
  });
});
