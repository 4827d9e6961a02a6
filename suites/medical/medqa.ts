// MedQA (USMLE, 4 options). Loglikelihood: lm-eval lm_eval/tasks/medqa/medqa.yaml + preprocess_medqa.py:
//   "Question: {sent1}\nA. {ending0}\nB. ...\nD. {ending3}\nAnswer:", choices A-D, acc and acc_norm.
// Data: jind11/MedQA data_clean/questions/US/4_options/phrases_no_exclude_test.jsonl (question,
//   options{A..D}, answer_idx; bundled: its first 50 lines), or lm-eval's own Hub layout
//   (GBaker/MedQA-USMLE-4-options-hf: sent1, ending0..ending3, label) given through --data.
import { int, readJsonl, str, type LocatedRow } from '../load/formats.ts';
import { loadDocs } from '../load/source.ts';
import { multipleChoice } from '../multiple-choice.ts';
import type { Task } from '../types.ts';
import { ABCD, goldInRange, letterIndex, letteredLines, optionsObject, type LetteredDoc } from './lettered.ts';

export function medqaDoc(r: LocatedRow, index: number): LetteredDoc {
  if ('sent1' in r.row) {
    const options = [0, 1, 2, 3].map((i) => str(r, `ending${i}`)) as LetteredDoc['options'];
    const id = typeof r.row.id === 'string' ? r.row.id : String(index + 1);
    return { id, question: str(r, 'sent1'), options, gold: goldInRange(r, int(r, 'label'), 'label') };
  }
  return { id: String(index + 1), question: str(r, 'question'), options: optionsObject(r), gold: letterIndex(r, r.row.answer_idx, 'answer_idx') };
}

export const medqa: Task<LetteredDoc> = {
  name: 'medqa',
  suite: 'medical',
  protocols: ['loglikelihood'],
  metrics: { loglikelihood: ['acc', 'acc_norm'] },
  load: (options) =>
    loadDocs(
      {
        task: 'medqa',
        bundled: { dir: 'medical/medqa', files: ['phrases_no_exclude_test.jsonl'] },
        parse: async ([path]) => (path === undefined ? [] : (await readJsonl(path)).map(medqaDoc)),
      },
      options,
    ),
  docId: (doc) => doc.id,
  multipleChoice: (doc) => multipleChoice(`Question: ${doc.question}\n${letteredLines(doc.options)}Answer:`, ABCD, doc.gold),
};
