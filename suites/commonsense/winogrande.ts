// WinoGrande. Loglikelihood: lm-eval lm_eval/tasks/winogrande/preprocess_winogrande.py, partial
//   evaluation: one context per option, sentence[:blank] + option, and the shared continuation
//   " " + sentence[blank+1:].strip(); metric acc only (default.yaml).
// Generation: LLM-Adapters commonsense_evaluate.py (extract_answer: first of option1|option2).
import { TARGET_DELIMITER } from '../multiple-choice.ts';
import type { MultipleChoice } from '../types.ts';
import { commonsenseTask, type CommonsenseDoc } from './inline.ts';

export function winograndeChoice(doc: CommonsenseDoc): MultipleChoice {
  const blank = doc.question.indexOf('_');
  const contexts = doc.options.map((option) => doc.question.slice(0, blank) + option);
  const target = doc.question.slice(blank + 1).trim();
  return {
    context: doc.question.slice(0, blank),
    contexts,
    choices: contexts.map(() => TARGET_DELIMITER + target),
    gold: doc.gold,
    // process_results divides by len(doc_to_choice), which here are the partial contexts.
    normLengths: contexts.map((c) => c.length),
  };
}

export const winogrande = commonsenseTask({
  name: 'winogrande',
  bundledDir: 'winogrande',
  layout: { prefix: 'Please choose the correct answer to fill in the blank to complete the given sentence: ', label: 'Option', between: ' ', tail: ' ' },
  answerWords: ['option1', 'option2'],
  toMultipleChoice: winograndeChoice,
  loglikelihoodMetrics: ['acc'],
  check: (doc) => (doc.question.includes('_') ? null : `sentence has no "_" blank to fill: ${doc.question.slice(0, 60)}`),
});
