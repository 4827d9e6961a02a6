// MMLU, one task per medical subject. Loglikelihood: lm-eval lm_eval/tasks/mmlu/default/_default_template_yaml:
//   description "The following are multiple choice questions (with answers) about {subject}.\n\n"
//   (mmlu_<subject>.yaml; underscores become spaces) then
//   "{{question.strip()}}\nA. {{choices[0]}}\nB. ...\nD. {{choices[3]}}\nAnswer:", choices A-D, metric acc.
// Data: hendrycks/test data/test/<subject>_test.csv (no header: question, A, B, C, D, answer letter;
//   bundled: first 20 rows), or the Hub's cais/mmlu <subject>/test-00000-of-00001.parquet
//   (question, subject, choices[4], answer 0-3) through --data or the HF cache layout.
import { int, readDelimited, readParquet, str, strList, rowError, type LocatedRow } from '../load/formats.ts';
import { loadDocs } from '../load/source.ts';
import { multipleChoice } from '../multiple-choice.ts';
import type { Task } from '../types.ts';
import { ABCD, goldInRange, letterIndex, letteredLines, type LetteredDoc } from './lettered.ts';

export const MMLU_MEDICAL_SUBJECTS = ['anatomy', 'clinical_knowledge', 'college_biology', 'college_medicine', 'medical_genetics', 'professional_medicine'] as const;
export type MmluSubject = (typeof MMLU_MEDICAL_SUBJECTS)[number];

function mmluDoc(r: LocatedRow, index: number): LetteredDoc {
  if ('choices' in r.row) {
    const choices = strList(r, 'choices');
    if (choices.length !== 4) throw rowError(r.where, `expected 4 choices, got ${choices.length}`);
    return { id: String(index + 1), question: str(r, 'question'), options: choices as LetteredDoc['options'], gold: goldInRange(r, int(r, 'answer'), 'answer') };
  }
  const options = ['A', 'B', 'C', 'D'].map((k) => str(r, k)) as LetteredDoc['options'];
  return { id: String(index + 1), question: str(r, 'question'), options, gold: letterIndex(r, r.row.answer, 'answer') };
}

export function mmluDescription(subject: MmluSubject): string {
  return `The following are multiple choice questions (with answers) about ${subject.replaceAll('_', ' ')}.\n\n`;
}

export function mmluPrompt(subject: MmluSubject, doc: LetteredDoc): string {
  return `${mmluDescription(subject)}${doc.question.trim()}\n${letteredLines(doc.options)}Answer:`;
}

export function mmluTask(subject: MmluSubject): Task<LetteredDoc> {
  const name = `mmlu_${subject}`;
  return {
    name,
    suite: 'medical',
    protocols: ['loglikelihood'],
    metrics: { loglikelihood: ['acc'] },
    load: (options) =>
      loadDocs(
        {
          task: name,
          bundled: { dir: 'medical/mmlu-medical', files: [`${subject}_test.csv`] },
          hub: { repo: 'cais/mmlu', revision: 'main', files: [`${subject}/test-00000-of-00001.parquet`] },
          parse: async ([path]) => {
            if (path === undefined) return [];
            const rows = path.endsWith('.parquet') ? await readParquet(path) : await readDelimited(path, ',', ['question', 'A', 'B', 'C', 'D', 'answer']);
            return rows.map(mmluDoc);
          },
        },
        options,
      ),
    docId: (doc) => doc.id,
    multipleChoice: (doc) => ({ ...multipleChoice(mmluPrompt(subject, doc), ABCD, doc.gold), description: mmluDescription(subject) }),
  };
}
