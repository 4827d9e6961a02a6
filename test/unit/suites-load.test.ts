// Loaders on small files written in the exact upstream/Hub formats: parquet (written by DuckDB, an
// independent parquet writer, read back by hyparquet) inside an HF-hub-cache layout, the bundled
// layouts through --data, the offline skip, and malformed input.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../results/errors.ts';
import { readParquet, str } from '../../suites/load/formats.ts';
import { TASKS } from '../../suites/registry.ts';
import type { LoadOutcome, Task, TaskLoadOptions } from '../../suites/types.ts';

const task = (name: string): Task => TASKS.find((t) => t.name === name)!;
let root: string;
let cache: string;

/** Writes `select` as a parquet file with DuckDB. */
async function writeParquet(path: string, select: string): Promise<void> {
  mkdirSync(dirname(path), { recursive: true });
  const db = await DuckDBInstance.create(':memory:');
  const con = await db.connect();
  await con.run(`COPY (${select}) TO '${path}' (FORMAT parquet)`);
  con.closeSync();
}

/** huggingface_hub's cache layout: refs/<revision> holds the commit; snapshots/<commit>/<path> links into blobs/. */
async function cacheDataset(repo: string, revision: string, path: string, select: string): Promise<string> {
  const repoDir = join(cache, `datasets--${repo.replace('/', '--')}`);
  const commit = 'a'.repeat(40);
  const blob = join(repoDir, 'blobs', `${path.replace(/\W/g, '')}`);
  await writeParquet(blob, select);
  mkdirSync(dirname(join(repoDir, 'refs', revision)), { recursive: true });
  writeFileSync(join(repoDir, 'refs', revision), commit);
  const link = join(repoDir, 'snapshots', commit, path);
  mkdirSync(dirname(link), { recursive: true });
  symlinkSync(blob, link);
  return join(repoDir, 'snapshots', commit);
}

function opts(extra: Partial<TaskLoadOptions> = {}): TaskLoadOptions {
  return { offline: true, env: { HF_HUB_CACHE: cache }, ...extra };
}

function loaded<D>(out: LoadOutcome<D>): D[] {
  if (out.status !== 'loaded') throw new Error(out.reason);
  return out.docs;
}

const HOLDINGS = "['holding one', 'holding two', 'holding three', 'holding four', 'holding five']";

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'suites-load-'));
  cache = join(root, 'hub');
  // coastalcph/lex_glue case_hold: context (the citing prompt with <HOLDING>), endings[5], label.
  await cacheDataset('coastalcph/lex_glue', 'main', 'case_hold/test-00000-of-00001.parquet',
    `SELECT * FROM (VALUES ('The court held (<HOLDING>).', ${HOLDINGS}, 3::BIGINT)) t(context, endings, label)`);
  // nguha/legalbench parquet export: answer, index, text (all strings).
  await cacheDataset('nguha/legalbench', 'refs/convert/parquet', 'abercrombie/test/0000.parquet',
    `SELECT * FROM (VALUES ('generic', '0', 'The mark "Salt" for salt.')) t(answer, index, text)`);
}, 30_000);

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('HF cache and Hub sources', () => {
  it('reads CaseHOLD from the cache while offline, in lm-eval\'s prompt', async () => {
    const out = await task('casehold').load(opts());
    expect(out.status === 'loaded' && out.source).toBe(`HF cache coastalcph/lex_glue@${'a'.repeat(40)}`);
    const [doc] = loaded(out);
    expect(task('casehold').multipleChoice!(doc)).toEqual({
      context: 'Complete the following excerpt from a US court opinion:\nThe court held (<HOLDING>).\nAnswer:',
      choices: [' holding one', ' holding two', ' holding three', ' holding four', ' holding five'],
      gold: 3,
      normLengths: [11, 11, 13, 12, 12],
    });
  });

  it('fills the bundled LegalBench base prompt from a cached test row', async () => {
    const t = task('legalbench_abercrombie');
    const out = await t.load(opts());
    const [doc] = loaded(out);
    const template = readFileSync(new URL('../../suites/data/legal/legalbench/abercrombie/base_prompt.txt', import.meta.url), 'utf8');
    const g = t.generation!(doc);
    // base_prompt.txt ends 'Q: {{text}} What is the type of mark?\nA:' (HazyResearch/legalbench tasks/abercrombie).
    expect(g.prompt).toBe(template.replace('{{text}}', 'The mark "Salt" for salt.'));
    expect(g.prompt.endsWith('Q: The mark "Salt" for salt. What is the type of mark?\nA:')).toBe(true);
    expect(g).toMatchObject({ until: ['\n'], maxTokens: 15, target: 'generic' });
    expect(t.scoreGeneration!(doc, ' Generic\n')).toEqual({ exact_match: 1 });
    expect(out.status === 'loaded' && out.files.map((f) => f.path.split('/').pop())).toEqual(['0000.parquet', 'base_prompt.txt']);
  });

  it('skips, with the repo and a fetch command, a task that is offline and uncached', async () => {
    const out = await task('legalbench_hearsay').load(opts());
    expect(out.status).toBe('skipped');
    expect(out.status === 'skipped' && out.reason).toMatch(/nguha\/legalbench is not in the HF cache .* while offline; fetch it with `huggingface-cli download --repo-type dataset nguha\/legalbench hearsay\/test\/0000.parquet --revision refs\/convert\/parquet`/);
  });

  it('online and uncached, a failed download is an InputError naming the file and the HF_TOKEN fix', async () => {
    // Port 9 on loopback refuses the connection at once: no network is touched.
    const load = task('legalbench_hearsay').load({ offline: false, env: { HF_HUB_CACHE: cache, HF_ENDPOINT: 'http://127.0.0.1:9' } });
    await expect(load).rejects.toThrow(/legalbench_hearsay: could not download nguha\/legalbench\/hearsay\/test\/0000.parquet@refs\/convert\/parquet .*set HF_TOKEN if the dataset is gated/);
  });

  it('treats HF_HUB_OFFLINE=1 as offline', async () => {
    const out = await task('legalbench_hearsay').load({ offline: false, env: { HF_HUB_CACHE: cache, HF_HUB_OFFLINE: '1' } });
    expect(out.status).toBe('skipped');
  });
});

describe('--data in the Hub formats', () => {
  it('hellaswag parquet (Rowan/hellaswag columns) is preprocessed as lm-eval utils.py does', async () => {
    const snapshot = join(root, 'hellaswag-copy');
    await writeParquet(join(snapshot, 'default/validation/0000.parquet'),
      `SELECT * FROM (VALUES (7::BIGINT, 'Making a sandwich', '[header] How to make a sandwich [title] Get bread.', 'then SPREAD', '[header] How to make a sandwich [title] Get bread. then SPREAD', ['butter it.', 'eat [step] it.', 'c', 'd'], 'wikihow~1', 'val', 'zeroshot', '1')) t(ind, activity_label, ctx_a, ctx_b, ctx, endings, source_id, split, split_type, label)`);
    const t = task('hellaswag');
    const out = await t.load(opts({ dataPath: snapshot }));
    const [doc] = loaded(out);
    // By hand: ctx = ctx_a + " " + "then SPREAD".capitalize() = "... Get bread. Then spread"; preprocess:
    // " [title]" -> ". ", "[header]" removed, "  " -> " ".
    const mc = t.multipleChoice!(doc);
    expect(mc.context).toBe('Making a sandwich: How to make a sandwich. Get bread. Then spread');
    expect(mc.choices).toEqual([' butter it.', ' eat it.', ' c', ' d']);
    expect(mc.gold).toBe(1);
    expect(t.docId(doc)).toBe('7');
    expect(t.scoreGeneration!(doc, 'the correct answer is ending2')).toEqual({ acc: 1 });
    // The generation instruction in LLM-Adapters' layout, from the raw ctx (dataset/hellaswag/test.json items).
    expect(t.generation!(doc).prompt).toContain(
      'Please choose the correct ending to complete the given sentence: Making a sandwich: [header] How to make a sandwich [title] Get bread. then SPREAD\n\n' +
        'Ending1: butter it. Ending2: eat [step] it. Ending3: c Ending4: d\n\nAnswer format: ending1/ending2/ending3/ending4',
    );
  });

  it('medmcqa parquet (openlifescienceai/medmcqa columns)', async () => {
    const file = join(root, 'medmcqa.parquet');
    await writeParquet(file, `SELECT * FROM (VALUES ('id-1', 'Which?', 'w', 'x', 'y', 'z', 3::BIGINT, 'single', '', 'Anatomy', '')) t(id, question, opa, opb, opc, opd, cop, choice_type, exp, subject_name, topic_name)`);
    const t = task('medmcqa');
    const [doc] = loaded(await t.load(opts({ dataPath: file })));
    expect(t.multipleChoice!(doc)).toMatchObject({ context: 'Question: Which?\nChoices:\nA. w\nB. x\nC. y\nD. z\nAnswer:', gold: 3 });
  });

  it('mmlu parquet (cais/mmlu columns) and medqa in lm-eval\'s -hf JSONL layout', async () => {
    const file = join(root, 'anatomy.parquet');
    await writeParquet(file, `SELECT * FROM (VALUES (' Where? ', 'anatomy', ['a', 'b', 'c', 'd'], 2::BIGINT)) t(question, subject, choices, answer)`);
    const [doc] = loaded(await task('mmlu_anatomy').load(opts({ dataPath: file })));
    expect(task('mmlu_anatomy').multipleChoice!(doc)).toMatchObject({
      context: 'The following are multiple choice questions (with answers) about anatomy.\n\nWhere?\nA. a\nB. b\nC. c\nD. d\nAnswer:',
      gold: 2,
    });
    const jsonl = join(root, 'medqa-hf.jsonl');
    writeFileSync(jsonl, JSON.stringify({ id: 'q1', sent1: 'Why?', sent2: '', ending0: 'p', ending1: 'q', ending2: 'r', ending3: 's', label: 1 }) + '\n');
    const [m] = loaded(await task('medqa').load(opts({ dataPath: jsonl })));
    expect(task('medqa').multipleChoice!(m)).toMatchObject({ context: 'Question: Why?\nA. p\nB. q\nC. r\nD. s\nAnswer:', gold: 1 });
  });

  it('a --data folder in the bundled layout, and a lone ori_pqal.json using its final_decision', async () => {
    const dir = join(root, 'pubmedqa');
    mkdirSync(dir);
    const bundled = new URL('../../suites/data/medical/pubmedqa/', import.meta.url).pathname;
    for (const f of ['ori_pqal.json', 'test_ground_truth.json']) copyFileSync(join(bundled, f), join(dir, f));
    const out = await task('pubmedqa').load(opts({ dataPath: dir, limit: 2 }));
    expect(out.status === 'loaded' && out.source).toBe(`--data ${dir}`);
    // test_ground_truth.json's first two ids, in file order.
    expect(loaded(out).map((d) => task('pubmedqa').docId(d))).toEqual(['21645374', '16418930']);
    const single = join(root, 'one.json');
    // Written as text: a JS object literal would itself reorder the integer-like keys.
    writeFileSync(single, '{"9": {"QUESTION": "Q?", "CONTEXTS": ["c1", "c2"], "final_decision": "maybe"}, "1": {"QUESTION": "R?", "CONTEXTS": [], "final_decision": "no"}}');
    const docs = loaded(await task('pubmedqa').load(opts({ dataPath: single })));
    // File order, not JSON.parse's numeric key order.
    expect(docs.map((d) => task('pubmedqa').multipleChoice!(d).gold)).toEqual([2, 1]);
    expect(task('pubmedqa').multipleChoice!(docs[0]).context).toBe('Abstract: c1\nc2\nQuestion: Q?\nAnswer:');
  });
});

describe('parquet binary columns', () => {
  it('come back as bytes (a PNG that decodes to its pixels) while string columns stay strings', async () => {
    // A 3x2 RGB image whose pixels are given here; sharp encodes it as PNG and decodes it back.
    const pixels = Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 200, 150, 100, 7, 8, 9]);
    const png = await sharp(pixels, { raw: { width: 3, height: 2, channels: 3 } }).png().toBuffer();
    // A PNG starts with 0x89 'PNG': not valid UTF-8, so decoding it as text cannot give the bytes back.
    expect(png[0]).toBe(0x89);
    const file = join(root, 'binary.parquet');
    // DuckDB BLOB -> un-annotated BYTE_ARRAY; VARCHAR -> BYTE_ARRAY annotated UTF8. The struct is HF
    // datasets' Image feature layout ({bytes, path}, as in flaviagiammarino/vqa-rad).
    const hex = png.toString('hex');
    await writeParquet(file, `SELECT {'bytes': from_hex('${hex}'), 'path': 'synpic1.png'} AS image, from_hex('${hex}') AS raw,
      'café ✓' AS caption, ['a', 'b'] AS tags, 42::BIGINT AS n`);
    const [row] = await readParquet(file);
    const { image, raw, caption, tags, n } = row!.row as { image: { bytes: unknown; path: unknown }; raw: unknown; caption: unknown; tags: unknown; n: unknown };
    expect(caption).toBe('café ✓');
    expect(tags).toEqual(['a', 'b']);
    expect(n).toBe(42);
    expect(image.path).toBe('synpic1.png');
    for (const bytes of [image.bytes, raw]) {
      expect(bytes).toBeInstanceOf(Uint8Array);
      expect(Buffer.from(bytes as Uint8Array).equals(png)).toBe(true);
      const decoded = await sharp(bytes as Uint8Array).raw().toBuffer({ resolveWithObject: true });
      expect([decoded.info.width, decoded.info.height, decoded.info.channels]).toEqual([3, 2, 3]);
      expect([...decoded.data]).toEqual([...pixels]);
    }
  });

  it('a text column written without the UTF8 annotation is read as a string field; binary is refused as one', async () => {
    const file = join(root, 'unannotated.parquet');
    // encode() gives the UTF-8 bytes as a BLOB, i.e. an un-annotated BYTE_ARRAY column.
    await writeParquet(file, `SELECT encode('naïve question') AS question, from_hex('89504e47') AS image`);
    const [row] = await readParquet(file);
    expect(row!.row.question).toBeInstanceOf(Uint8Array);
    expect(str(row!, 'question')).toBe('naïve question');
    expect(() => str(row!, 'image')).toThrow(InputError);
    expect(() => str(row!, 'image')).toThrow(/unannotated\.parquet row 1: field "image" is binary data, not UTF-8 text/);
  });
});

describe('malformed data is an InputError naming the file and line', () => {
  const write = (name: string, text: string): string => {
    const p = join(root, name);
    writeFileSync(p, text);
    return p;
  };
  const row = { question: 'Q', options: { A: 'a', B: 'b', C: 'c', D: 'd' }, answer_idx: 'B' };

  it('bad JSON line, missing field, wrong option count, bad answer letter (JSONL)', async () => {
    const medqa = task('medqa');
    const bad = write('bad.jsonl', JSON.stringify(row) + '\n{"question": \n');
    await expect(medqa.load(opts({ dataPath: bad }))).rejects.toThrow(new RegExp(`${bad}:2: not valid JSON`));
    await expect(medqa.load(opts({ dataPath: bad }))).rejects.toBeInstanceOf(InputError);
    const missing = write('missing.jsonl', JSON.stringify({ ...row, question: undefined }) + '\n');
    await expect(medqa.load(opts({ dataPath: missing }))).rejects.toThrow(new RegExp(`${missing}:1: field "question" missing`));
    const five = write('five.jsonl', JSON.stringify(row) + '\n' + JSON.stringify({ ...row, options: { ...row.options, E: 'e' } }) + '\n');
    await expect(medqa.load(opts({ dataPath: five }))).rejects.toThrow(new RegExp(`${five}:2: expected exactly 4 options A-D`));
    const letter = write('letter.jsonl', JSON.stringify({ ...row, answer_idx: 'E' }) + '\n');
    await expect(medqa.load(opts({ dataPath: letter }))).rejects.toThrow(/field "answer_idx" is "E", expected a letter A-D/);
  });

  it('LLM-Adapters files: an answer outside the format, a mangled instruction, no blank', async () => {
    const item = { instruction: 'Please choose the correct solution to the question: G\n\nSolution1: a\n\nSolution2: b\n\nAnswer format: solution1/solution2', input: '', output: '', answer: 'solution3' };
    const p = write('piqa.json', JSON.stringify([item]));
    await expect(task('piqa').load(opts({ dataPath: p }))).rejects.toThrow(new RegExp(`${p} row 1: answer "solution3" is not one of solution1/solution2`));
    const q = write('piqa2.json', JSON.stringify([{ ...item, answer: 'solution1' }, { ...item, instruction: 'something else' }]));
    await expect(task('piqa').load(opts({ dataPath: q }))).rejects.toThrow(new RegExp(`${q} row 2: instruction is not in the LLM-Adapters layout`));
    const w = write('wino.json', JSON.stringify([{ instruction: 'Please choose the correct answer to fill in the blank to complete the given sentence: no blank here\n\nOption1: x Option2: y Answer format: option1/option2', answer: 'option1' }]));
    await expect(task('winogrande').load(opts({ dataPath: w }))).rejects.toThrow(/row 1: sentence has no "_" blank/);
    const g = write('gsm.json', JSON.stringify([{ instruction: 'x', answer: 'twelve' }]));
    await expect(task('gsm8k').load(opts({ dataPath: g }))).rejects.toThrow(/row 1: answer "twelve" is not a number/);
  });

  it('CSV with a wrong column count, parquet with five holdings missing, unreadable parquet', async () => {
    const csv = write('anatomy_test.csv', 'q,a,b,c,d,A\nq2,a,b,c,D\n');
    await expect(task('mmlu_anatomy').load(opts({ dataPath: csv }))).rejects.toThrow(new RegExp(`${csv} row 2: 5 columns, expected 6`));
    const few = join(root, 'few.parquet');
    await writeParquet(few, `SELECT * FROM (VALUES ('ctx', ['a', 'b', 'c', 'd'], 0::BIGINT)) t(context, endings, label)`);
    await expect(task('casehold').load(opts({ dataPath: few }))).rejects.toThrow(new RegExp(`${few} row 1: expected 5 holdings, got 4`));
    const junk = write('junk.parquet', 'not parquet at all');
    await expect(task('casehold').load(opts({ dataPath: junk }))).rejects.toThrow(/junk.parquet: not a readable parquet file/);
  });

  it('LegalBench TSV (quoted fields, as the repository writes them) through --data, and a missing slot column', async () => {
    const t = task('legalbench_abercrombie');
    const train = new URL('../../suites/data/legal/legalbench/abercrombie/train.tsv', import.meta.url).pathname;
    const docs = loaded(await t.load(opts({ dataPath: train })));
    // train.tsv row 1: 0<TAB>generic<TAB>"The mark ""Ivory"" for a product made of elephant tusks."
    expect(docs.length).toBe(5);
    expect(t.generation!(docs[0]).prompt.endsWith('Q: The mark "Ivory" for a product made of elephant tusks. What is the type of mark?\nA:')).toBe(true);
    expect(t.generation!(docs[0]).target).toBe('generic');
    const noText = write('test.tsv', 'index\tanswer\tother\n0\tgeneric\tx\n');
    await expect(t.load(opts({ dataPath: noText }))).rejects.toThrow(new RegExp(`${noText} row 1: column "text" \\(used by base_prompt.txt\\) missing`));
  });

  it('a --data path that does not exist or holds no data file, and a bad --limit', async () => {
    await expect(task('boolq').load(opts({ dataPath: join(root, 'nope.json') }))).rejects.toThrow(/--data .*nope.json: no such file or directory/);
    const empty = join(root, 'empty');
    mkdirSync(empty);
    await expect(task('boolq').load(opts({ dataPath: empty }))).rejects.toThrow(/no boolq data in this folder; expected test.json/);
    await expect(task('boolq').load(opts({ limit: 0 }))).rejects.toThrow(/--limit 0: expected a positive integer/);
  });
});
