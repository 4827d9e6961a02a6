// PIQA. Loglikelihood: lm-eval lm_eval/tasks/piqa/piqa.yaml, "Question: {{goal}}\nAnswer:", choices [sol1, sol2].
// Generation: LLM-Adapters commonsense_evaluate.py (extract_answer: first of solution1|solution2).
import { multipleChoice } from '../multiple-choice.ts';
import { commonsenseTask } from './inline.ts';

export const piqa = commonsenseTask({
  name: 'piqa',
  bundledDir: 'piqa',
  layout: { prefix: 'Please choose the correct solution to the question: ', label: 'Solution', between: '\n\n', tail: '\n\n' },
  answerWords: ['solution1', 'solution2'],
  toMultipleChoice: (doc) => multipleChoice(`Question: ${doc.question}\nAnswer:`, doc.options, doc.gold),
  loglikelihoodMetrics: ['acc', 'acc_norm'],
});
