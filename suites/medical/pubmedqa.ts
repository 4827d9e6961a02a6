// PubMedQA (PQA-L, reasoning-required). Loglikelihood: lm-eval lm_eval/tasks/pubmedqa/pubmedqa.yaml +
//   preprocess_pubmedqa.py: "Abstract: {CONTEXTS joined by \n}\nQuestion: {QUESTION}\nAnswer:",
//   choices ["yes", "no", "maybe"], target final_decision, metric acc.
// Data: pubmedqa/pubmedqa data/ori_pqal.json (+ data/test_ground_truth.json to select the 500-item
//   test split, in its order); the bundled sample is the first 50 of that split.
import { readJsonObjectOrdered, rowError } from '../load/formats.ts';
import { loadDocs } from '../load/source.ts';
import { multipleChoice } from '../multiple-choice.ts';
import type { Task } from '../types.ts';

export const PUBMEDQA_CHOICES = ['yes', 'no', 'maybe'] as const;
export type PubmedqaAnswer = (typeof PUBMEDQA_CHOICES)[number];

export interface PubmedqaDoc {
  pubid: string;
  question: string;
  contexts: string[];
  answer: PubmedqaAnswer;
}

function isAnswer(v: unknown): v is PubmedqaAnswer {
  return typeof v === 'string' && (PUBMEDQA_CHOICES as readonly string[]).includes(v);
}

export async function readPubmedqa(paths: string[]): Promise<PubmedqaDoc[]> {
  const [itemsPath, truthPath] = paths;
  if (itemsPath === undefined) return [];
  const items = await readJsonObjectOrdered(itemsPath);
  if (!items) throw rowError(itemsPath, 'expected a JSON object keyed by PubMed id (ori_pqal.json)');
  const byId = items.value;
  let selection: [string, unknown][];
  if (truthPath !== undefined) {
    const truth = await readJsonObjectOrdered(truthPath);
    if (!truth) throw rowError(truthPath, 'expected a JSON object PubMed id -> yes/no/maybe (test_ground_truth.json)');
    selection = truth.keys.map((id) => [id, truth.value[id]]);
  } else {
    selection = items.keys.map((id) => [id, undefined]);
  }
  return selection.map(([pubid, label]) => {
    const where = `${itemsPath} item ${pubid}`;
    const item = byId[pubid];
    if (typeof item !== 'object' || item === null) throw rowError(where, `no such item (listed in ${truthPath ?? itemsPath})`);
    const { QUESTION, CONTEXTS, final_decision } = item as Record<string, unknown>;
    if (typeof QUESTION !== 'string') throw rowError(where, 'field "QUESTION" missing or not a string');
    if (!Array.isArray(CONTEXTS) || !CONTEXTS.every((c) => typeof c === 'string')) throw rowError(where, 'field "CONTEXTS" missing or not a list of strings');
    const answer = label ?? final_decision;
    if (!isAnswer(answer)) throw rowError(where, `answer ${JSON.stringify(answer)} is not yes/no/maybe`);
    return { pubid, question: QUESTION, contexts: CONTEXTS as string[], answer };
  });
}

export const pubmedqa: Task<PubmedqaDoc> = {
  name: 'pubmedqa',
  suite: 'medical',
  protocols: ['loglikelihood'],
  metrics: { loglikelihood: ['acc'] },
  load: (options) =>
    loadDocs({ task: 'pubmedqa', bundled: { dir: 'medical/pubmedqa', files: ['ori_pqal.json', 'test_ground_truth.json'] }, parse: readPubmedqa }, options),
  docId: (doc) => doc.pubid,
  multipleChoice: (doc) =>
    multipleChoice(`Abstract: ${doc.contexts.join('\n')}\nQuestion: ${doc.question}\nAnswer:`, PUBMEDQA_CHOICES, PUBMEDQA_CHOICES.indexOf(doc.answer)),
};
