// MedMCQA. Loglikelihood: lm-eval lm_eval/tasks/medmcqa/medmcqa.yaml + utils_medmcqa.py:
//   "Question: {question}\nChoices:\nA. {opa}\nB. {opb}\nC. {opc}\nD. {opd}\nAnswer:", choices A-D,
//   target cop, acc and acc_norm; lm-eval scores the validation split.
// Data: the bundled sample is MedAgentsBench's re-layout (question, realidx, options{A..D}, answer_idx);
//   the Hub's openlifescienceai/medmcqa parquet (id, question, opa..opd, cop 0-3) loads through --data or
//   the HF cache layout.
import { int, readJsonl, readParquet, str, type LocatedRow } from '../load/formats.ts';
import { loadDocs } from '../load/source.ts';
import { multipleChoice } from '../multiple-choice.ts';
import type { Task } from '../types.ts';
import { ABCD, goldInRange, letterIndex, letteredLines, optionsObject, type LetteredDoc } from './lettered.ts';

export function medmcqaDoc(r: LocatedRow): LetteredDoc {
  if ('opa' in r.row) {
    const options = ['opa', 'opb', 'opc', 'opd'].map((k) => str(r, k)) as LetteredDoc['options'];
    return { id: str(r, 'id'), question: str(r, 'question'), options, gold: goldInRange(r, int(r, 'cop'), 'cop') };
  }
  return { id: str(r, 'realidx'), question: str(r, 'question'), options: optionsObject(r), gold: letterIndex(r, r.row.answer_idx, 'answer_idx') };
}

export const medmcqa: Task<LetteredDoc> = {
  name: 'medmcqa',
  suite: 'medical',
  protocols: ['loglikelihood'],
  metrics: { loglikelihood: ['acc', 'acc_norm'] },
  load: (options) =>
    loadDocs(
      {
        task: 'medmcqa',
        bundled: { dir: 'medical/medmcqa', files: ['test.jsonl'] },
        hub: { repo: 'openlifescienceai/medmcqa', revision: 'refs/convert/parquet', files: ['default/validation/0000.parquet'] },
        parse: async ([path]) => {
          if (path === undefined) return [];
          return (path.endsWith('.parquet') ? await readParquet(path) : await readJsonl(path)).map(medmcqaDoc);
        },
      },
      options,
    ),
  docId: (doc) => doc.id,
  multipleChoice: (doc) => multipleChoice(`Question: ${doc.question}\nChoices:\n${letteredLines(doc.options)}Answer:`, ABCD, doc.gold),
};
