// ARC-Easy. Loglikelihood: lm-eval lm_eval/tasks/arc/arc_easy.yaml (arc_challenge.yaml includes it),
//   "Question: {{question}}\nAnswer:", choices {{choices.text}}.
// Generation: LLM-Adapters commonsense_evaluate.py (extract_answer: first of answer1..answer5).
import { multipleChoice } from '../multiple-choice.ts';
import { ANSWER_WORDS } from './answer-words.ts';
import { commonsenseTask } from './inline.ts';

export const arcEasy = commonsenseTask({
  name: 'arc-easy',
  bundledDir: 'arc-easy',
  layout: { prefix: 'Please choose the correct answer to the question: ', label: 'Answer', between: ' ', tail: '\n\n' },
  answerWords: ANSWER_WORDS,
  toMultipleChoice: (doc) => multipleChoice(`Question: ${doc.question}\nAnswer:`, doc.options, doc.gold),
  loglikelihoodMetrics: ['acc', 'acc_norm'],
});
