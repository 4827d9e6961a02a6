// HellaSwag. Loglikelihood: lm-eval lm_eval/tasks/hellaswag/utils.py: query =
//   preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize()), choices = preprocess(endings),
//   acc and acc_norm (hellaswag.yaml). Data: the bundled LLM-Adapters sample (dataset/hellaswag/test.json,
//   where ctx_a/ctx_b are already joined, so ctx_b's capitalisation cannot be redone: "... roof. he"
//   stays lower case there) or the Hub's Rowan/hellaswag validation split in lm-eval's own format.
// Generation: LLM-Adapters commonsense_evaluate.py (extract_answer: first of ending1..ending4).
import { int, readParquet, rowError, str, strList } from '../load/formats.ts';
import { multipleChoice } from '../multiple-choice.ts';
import { commonsenseTask, type CommonsenseDoc } from './inline.ts';

/** utils.py preprocess: strip, " [title]" -> ". ", drop [bracketed] WikiHow artifacts, "  " -> " " (non-overlapping, as str.replace). */
export function hellaswagPreprocess(text: string): string {
  return text.trim().replaceAll(' [title]', '. ').replace(/\[.*?\]/g, '').replaceAll('  ', ' ');
}

/** Python str.capitalize(): first character upper case, the rest lower case. */
export function pyCapitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1).toLowerCase();
}

const WORDS = ['ending1', 'ending2', 'ending3', 'ending4'];

/** Rowan/hellaswag rows (ind, activity_label, ctx_a, ctx_b, endings, label as a string) -> documents. */
export async function readHellaswagParquet(path: string): Promise<CommonsenseDoc[]> {
  return (await readParquet(path)).map((r) => {
    const endings = strList(r, 'endings');
    if (endings.length !== 4) throw rowError(r.where, `expected 4 endings, got ${endings.length}`);
    const gold = int(r, 'label');
    if (gold < 0 || gold > 3) throw rowError(r.where, `label ${gold} out of range 0-3`);
    const question = `${str(r, 'activity_label')}: ${str(r, 'ctx_a')} ${pyCapitalize(str(r, 'ctx_b'))}`;
    // The instruction as LLM-Adapters built it, for the generation protocol: from the raw `ctx`
    // (ctx_b not capitalised), as its test.json shows ("Roof shingle removal: ... on a roof. he").
    const instruction =
      `Please choose the correct ending to complete the given sentence: ${str(r, 'activity_label')}: ${str(r, 'ctx')}\n\n` +
      endings.map((e, i) => `Ending${i + 1}: ${e}`).join(' ') +
      `\n\nAnswer format: ${WORDS.join('/')}`;
    return { id: String(int(r, 'ind')), instruction, answer: WORDS[gold] as string, question, options: endings, gold };
  });
}

export const hellaswag = commonsenseTask({
  name: 'hellaswag',
  bundledDir: 'hellaswag',
  layout: { prefix: 'Please choose the correct ending to complete the given sentence: ', label: 'Ending', between: ' ', tail: '\n\n' },
  answerWords: WORDS,
  toMultipleChoice: (doc) => multipleChoice(hellaswagPreprocess(doc.question), doc.options.map(hellaswagPreprocess), doc.gold),
  loglikelihoodMetrics: ['acc', 'acc_norm'],
  hub: { repo: 'Rowan/hellaswag', revision: 'refs/convert/parquet', files: ['default/validation/0000.parquet'] },
  parseHub: readHellaswagParquet,
});
