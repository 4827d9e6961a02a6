// OpenBookQA. Loglikelihood: lm-eval lm_eval/tasks/openbookqa/openbookqa.yaml, doc_to_text question_stem
//   (the bare question, no "Question:" frame), choices {{choices.text}}.
// Generation: LLM-Adapters commonsense_evaluate.py (extract_answer: first of answer1..answer5).
import { multipleChoice } from '../multiple-choice.ts';
import { ANSWER_WORDS } from './answer-words.ts';
import { commonsenseTask } from './inline.ts';

export const openbookqa = commonsenseTask({
  name: 'openbookqa',
  bundledDir: 'openbookqa',
  layout: { prefix: 'Please choose the correct answer to the question: ', label: 'Answer', between: ' ', tail: '\n\n' },
  answerWords: ANSWER_WORDS,
  toMultipleChoice: (doc) => multipleChoice(doc.question, doc.options, doc.gold),
  loglikelihoodMetrics: ['acc', 'acc_norm'],
});
