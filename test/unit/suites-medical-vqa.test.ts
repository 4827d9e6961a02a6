import { mkdtempSync, rmSync, writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../results/errors.ts';
import { medicalVqa } from '../../suites/medical-vqa/medical-vqa.ts';
import { closedAccuracy, exactMatch, normalizeAnswer, tokenF1, tokenRecall } from '../../suites/medical-vqa/score.ts';
import { decodeRgb } from '../../runners/vision/mllama-preprocess.ts';

const OFFLINE = { offline: true, env: { HF_HUB_CACHE: '/nonexistent-llama-eval-cache' } };
const tmp = mkdtempSync(join(tmpdir(), 'medical-vqa-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Writes `select` to `file` as parquet with DuckDB (an independent writer). */
async function duckdbCopy(select: string, file: string): Promise<void> {
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  await conn.run(`COPY (${select}) TO '${file}' (FORMAT PARQUET)`);
  conn.closeSync();
}

describe('medical-vqa scoring', () => {
  it('normalises and scores open answers as SQuAD v1.1 evaluate.py does', () => {
    // SQuAD normalize_answer: lower, no punctuation, no articles, single spaces.
    expect(normalizeAnswer('The  Left-Lung.')).toBe('leftlung');
    expect(exactMatch('the left lung.', 'Left lung')).toBe(1);
    // By hand: pred {right, lower, lobe}, gold {right, lobe}: P 2/3, R 1 -> F1 = 2PR/(P+R) = 0.8.
    expect(tokenF1('right lower lobe', 'right lobe')).toBeCloseTo(0.8, 12);
    expect(tokenRecall('right lower lobe', 'right lobe')).toBe(1);
    // Multiset overlap: pred "lobe lobe", gold "lobe": 1 shared -> P 1/2, R 1 -> F1 2/3.
    expect(tokenF1('lobe lobe', 'lobe')).toBeCloseTo(2 / 3, 12);
    expect(tokenF1('heart', 'lung')).toBe(0);
    expect(tokenRecall('', 'lung')).toBe(0);
  });

  it('takes the first standalone yes/no as a closed answer', () => {
    expect(closedAccuracy('Yes, there is a lesion.', 'yes')).toBe(1);
    expect(closedAccuracy('I do not know; no.', 'no')).toBe(1);
    // "not"/"know" are not "no": the first whole-word yes/no is "yes".
    expect(closedAccuracy('not sure I know, yes', 'no')).toBe(0);
    expect(closedAccuracy('maybe', 'yes')).toBe(0);
  });
});

describe('medical-vqa data', () => {
  it('loads the synthetic bundled sample with its images', async () => {
    const out = await medicalVqa.load(OFFLINE);
    if (out.status !== 'loaded') throw new Error(out.reason);
    expect(out.source).toBe('bundled sample (suites/data/medical-vqa)');
    // suites/data/medical-vqa/SOURCE.md: 10 questions, 6 closed and 4 open.
    expect(out.docs).toHaveLength(10);
    expect(out.docs.filter((d) => d.answerType === 'closed')).toHaveLength(6);
    const jpeg = out.docs.find((d) => d.id === 'synth-10')!;
    const prompt = medicalVqa.generation!(jpeg);
    expect(prompt.prompt).toBe('Question: Is any lesion visible?\nAnswer:');
    expect(prompt.images).toHaveLength(1);
    const rgb = await decodeRgb(prompt.images![0]!, jpeg.imageSource);
    expect([rgb.width, rgb.height]).toEqual([64, 64]);
    // The reference answer as the response scores 1 on every metric of its kind.
    for (const doc of out.docs) {
      const metrics = medicalVqa.scoreGeneration!(doc, doc.answer);
      expect(Object.values(metrics).every((v) => v === 1)).toBe(true);
      expect(Object.keys(metrics)[0]).toBe(doc.answerType === 'closed' ? 'closed_acc' : 'open_exact_match');
    }
  });

  it('reads HF parquet with the image embedded as a {bytes, path} struct', async () => {
    const png = readFileSync(new URL('../../suites/data/medical-vqa/images/lesion-left.png', import.meta.url));
    const file = join(tmp, 'test.parquet');
    // DuckDB writes the parquet (an independent writer), with HF datasets' Image feature layout.
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    await conn.run(`COPY (SELECT {'bytes': from_hex('${png.toString('hex')}'), 'path': 'synpic1.png'} AS image, 'is there a lesion?' AS question, 'yes' AS answer
      UNION ALL SELECT {'bytes': from_hex('${png.toString('hex')}'), 'path': 'synpic1.png'}, 'where is the lesion?', 'left lung') TO '${file}' (FORMAT PARQUET)`);
    conn.closeSync();
    const out = await medicalVqa.load({ ...OFFLINE, dataPath: file });
    if (out.status !== 'loaded') throw new Error(out.reason);
    expect(out.docs.map((d) => [d.question, d.answer, d.answerType])).toEqual([
      ['is there a lesion?', 'yes', 'closed'],
      ['where is the lesion?', 'left lung', 'open'],
    ]);
    expect(Buffer.from(medicalVqa.generation!(out.docs[0]!).images![0]!)).toEqual(png);
  });

  it('decodes a parquet-embedded PNG to the pixels it was made from, through --data and the shared loader', async () => {
    // 2x2 RGB pixels given here, PNG-encoded by sharp; the PNG signature byte 0x89 is not UTF-8,
    // so a loader that decoded the binary column as text would lose it.
    const pixels = Uint8Array.from([0, 0, 0, 255, 255, 255, 128, 64, 32, 1, 2, 3]);
    const png = await sharp(pixels, { raw: { width: 2, height: 2, channels: 3 } }).png().toBuffer();
    const file = join(tmp, 'pixels.parquet');
    await duckdbCopy(`SELECT {'bytes': from_hex('${png.toString('hex')}'), 'path': 'p.png'} AS image, 'what is shown?' AS question, 'chest' AS answer, 'OPEN' AS answer_type`, file);
    const out = await medicalVqa.load({ ...OFFLINE, dataPath: file });
    if (out.status !== 'loaded') throw new Error(out.reason);
    expect(out.docs.map((d) => [d.question, d.answer, d.answerType, d.imageSource])).toEqual([['what is shown?', 'chest', 'open', `${file} row 1 (p.png)`]]);
    const rgb = await decodeRgb(medicalVqa.generation!(out.docs[0]!).images![0]!, out.docs[0]!.imageSource);
    expect([rgb.width, rgb.height, [...rgb.data]]).toEqual([2, 2, [...pixels]]);
  });

  it('names the parquet row whose image struct has no bytes', async () => {
    const file = join(tmp, 'nobytes.parquet');
    await duckdbCopy(`SELECT {'bytes': NULL::BLOB, 'path': 'p.png'} AS image, 'q?' AS question, 'yes' AS answer`, file);
    await expect(medicalVqa.load({ ...OFFLINE, dataPath: file })).rejects.toThrow(InputError);
    await expect(medicalVqa.load({ ...OFFLINE, dataPath: file })).rejects.toThrow(/nobytes\.parquet row 1: column "image" has no embedded bytes/);
  });

  it('names the row of a missing image, a bad answer_type and a corrupt image', async () => {
    const dir = join(tmp, 'bad');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'questions.jsonl'), '{"image_name": "gone.png", "question": "q?", "answer": "yes"}\n');
    await expect(medicalVqa.load({ ...OFFLINE, dataPath: dir })).rejects.toThrow(/questions\.jsonl:1: image .*gone\.png not found/);
    writeFileSync(join(dir, 'questions.jsonl'), '{"image_name": "x.png", "question": "q?", "answer": "left", "answer_type": "CLOSED"}\n');
    writeFileSync(join(dir, 'x.png'), 'not a png');
    await expect(medicalVqa.load({ ...OFFLINE, dataPath: dir })).rejects.toThrow(InputError);
    await expect(medicalVqa.load({ ...OFFLINE, dataPath: dir })).rejects.toThrow(/closed question with answer "left"/);
    // The corrupt file loads as data; decoding it names the file.
    writeFileSync(join(dir, 'questions.jsonl'), '{"image_name": "x.png", "question": "q?", "answer": "left"}\n');
    const out = await medicalVqa.load({ ...OFFLINE, dataPath: dir });
    if (out.status !== 'loaded') throw new Error(out.reason);
    await expect(decodeRgb(medicalVqa.generation!(out.docs[0]!).images![0]!, out.docs[0]!.imageSource)).rejects.toThrow(/image .*x\.png: cannot decode/);
  });
});
