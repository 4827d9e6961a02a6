// medical-vqa: image + question, answered by generation (VQA-RAD / SLAKE / PathVQA style).
// Closed questions (yes/no) score `closed_acc`; open ones `open_exact_match`, `open_f1` and
// `open_recall` (score.ts). The prompt carries the image in `GenerationPrompt.images`; a runner
// without image input must refuse such a prompt (runners/vision/mllama-checkpoint.ts
// assertAcceptsImages), never score it text-only.
//
// Data, via `--data`:
//  - a JSONL / JSON array file (or a folder holding `questions.jsonl`) with VQA-RAD's fields
//    (`image_name`, `question`, `answer`, `answer_type` CLOSED/OPEN; SLAKE's `img_name` and `qid`
//    are accepted), image paths relative to the data file;
//  - an HF parquet file with the image embedded as a `{bytes, path}` struct column `image` and
//    `question`, `answer` columns (flaviagiammarino/vqa-rad, flaviagiammarino/path-vqa).
//    Without `answer_type`, an answer of yes/no makes the question closed (PathVQA's convention).
// Default: the synthetic sample in suites/data/medical-vqa (see its SOURCE.md: not real data).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { readRows, rowError, str, type LocatedRow } from '../load/formats.ts';
import { loadDocs } from '../load/source.ts';
import type { Task } from '../types.ts';
import { closedAccuracy, exactMatch, normalizeAnswer, tokenF1, tokenRecall } from './score.ts';

export interface MedicalVqaDoc {
  id: string;
  question: string;
  answer: string;
  answerType: 'closed' | 'open';
  /** Where the image came from (file path, or `parquet file row N`), for messages. */
  imageSource: string;
  /** The encoded image file, base64 (keeps documents plain JSON for the data hash). */
  imageBase64: string;
}

function imageOf(r: LocatedRow, dataFile: string): { source: string; bytes: Uint8Array } {
  const cell = r.row.image;
  // HF datasets' Image feature in parquet: a struct {bytes: binary, path: string}.
  if (typeof cell === 'object' && cell !== null && !Array.isArray(cell)) {
    const { bytes, path } = cell as Record<string, unknown>;
    if (bytes instanceof Uint8Array && bytes.length > 0) return { source: `${r.where} (${typeof path === 'string' ? path : 'embedded image'})`, bytes };
    throw rowError(r.where, 'column "image" has no embedded bytes; expected the HF Image struct {bytes, path}');
  }
  const name = [r.row.image_name, r.row.img_name, r.row.image].find((v): v is string => typeof v === 'string');
  if (name === undefined) throw rowError(r.where, 'no image: expected an "image_name" (VQA-RAD), "img_name" (SLAKE) or "image" field');
  const path = join(dirname(dataFile), name);
  if (!existsSync(path)) throw rowError(r.where, `image ${path} not found; image paths are relative to the data file's folder`);
  return { source: path, bytes: readFileSync(path) };
}

function answerTypeOf(r: LocatedRow, answer: string): 'closed' | 'open' {
  const raw = r.row.answer_type;
  if (raw === undefined || raw === null) return ['yes', 'no'].includes(normalizeAnswer(answer)) ? 'closed' : 'open';
  const t = String(raw).toUpperCase();
  if (t !== 'CLOSED' && t !== 'OPEN') throw rowError(r.where, `answer_type ${JSON.stringify(raw)} is not CLOSED or OPEN`);
  if (t === 'CLOSED' && !['yes', 'no'].includes(normalizeAnswer(answer))) {
    throw rowError(r.where, `closed question with answer ${JSON.stringify(answer)}; only yes/no closed questions are scored (mark it OPEN)`);
  }
  return t === 'CLOSED' ? 'closed' : 'open';
}

export async function readMedicalVqa(paths: string[]): Promise<MedicalVqaDoc[]> {
  const [file] = paths;
  if (file === undefined) return [];
  // readRows keeps parquet's binary columns (the embedded image) as bytes.
  const rows = await readRows(file);
  return rows.map((r, i) => {
    const question = str(r, 'question');
    // Parquet/JSON may give answers as numbers (PathVQA has numeric answers).
    const rawAnswer = r.row.answer;
    const answer = typeof rawAnswer === 'number' ? String(rawAnswer) : str(r, 'answer');
    const id = [r.row.qid, r.row.id].find((v) => typeof v === 'string' || typeof v === 'number');
    const image = imageOf(r, file);
    return {
      id: id === undefined ? String(i) : String(id),
      question,
      answer,
      answerType: answerTypeOf(r, answer),
      imageSource: image.source,
      imageBase64: Buffer.from(image.bytes).toString('base64'),
    };
  });
}

export const MEDICAL_VQA_METRICS = ['closed_acc', 'open_exact_match', 'open_f1', 'open_recall'] as const;
const CLOSED_METRICS = ['closed_acc'] as const;
const OPEN_METRICS = ['open_exact_match', 'open_f1', 'open_recall'] as const;

export const medicalVqa: Task<MedicalVqaDoc> = {
  name: 'medical-vqa',
  // Its own suite: `--suite medical` stays runnable on text-only models.
  suite: 'medical-vqa',
  protocols: ['generation'],
  metrics: { generation: MEDICAL_VQA_METRICS },
  load: (options) => loadDocs({ task: 'medical-vqa', bundled: { dir: 'medical-vqa', files: ['questions.jsonl'] }, parse: readMedicalVqa }, options),
  docId: (doc) => doc.id,
  generation: (doc) => ({
    // The LLaMA 3.2 Vision chat layout puts <|image|> before the text; runners place the image
    // token themselves, so the prompt carries the question only.
    prompt: `Question: ${doc.question}\nAnswer:`,
    until: ['\n'],
    maxTokens: 16,
    target: doc.answer,
    images: [Uint8Array.from(Buffer.from(doc.imageBase64, 'base64'))],
  }),
  scoreGeneration: (doc, response): Record<string, number> => {
    if (doc.answerType === 'closed') return { closed_acc: closedAccuracy(response, normalizeAnswer(doc.answer) as 'yes' | 'no') };
    return { open_exact_match: exactMatch(response, doc.answer), open_f1: tokenF1(response, doc.answer), open_recall: tokenRecall(response, doc.answer) };
  },
};

/**
 * The registered tasks: closed and open questions apart, as LLaVA-Med reports them (closed accuracy,
 * open recall), and because the run engine needs every sample of a task to report every metric it
 * declares. Each reads the same data and keeps its own kind of question (`--limit` counts those).
 */
function medicalVqaOf(kind: 'closed' | 'open'): Task<MedicalVqaDoc> {
  return {
    ...medicalVqa,
    name: `medical-vqa-${kind}`,
    metrics: { generation: kind === 'closed' ? CLOSED_METRICS : OPEN_METRICS },
    load: (options) => loadDocs({
      task: `medical-vqa-${kind}`,
      bundled: { dir: 'medical-vqa', files: ['questions.jsonl'] },
      parse: async (paths) => (await readMedicalVqa(paths)).filter((d) => d.answerType === kind),
    }, options),
  };
}

export const medicalVqaClosed = medicalVqaOf('closed');
export const medicalVqaOpen = medicalVqaOf('open');
