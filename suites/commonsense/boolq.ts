// BoolQ. Loglikelihood: lm-eval lm_eval/tasks/super_glue/boolq/default.yaml,
//   "{{passage}}\nQuestion: {{question}}?\nAnswer:", choices ["no", "yes"].
//   LLM-Adapters' BoolQ file (dataset/boolq/test.json) carries the question only, no passage, so the
//   prompt here is lm-eval's without its passage line: "Question: <q>?\nAnswer:". LLM-Adapters already
//   appended the "?" that super_glue's questions lack, so it is taken off before the template adds it.
// Generation: LLM-Adapters commonsense_evaluate.py (extract_answer: first of true|false).
import { multipleChoice } from '../multiple-choice.ts';
import { commonsenseTask } from './inline.ts';

export const boolq = commonsenseTask({
  name: 'boolq',
  bundledDir: 'boolq',
  layout: { prefix: 'Please answer the following question with true or false, question: ', label: '', between: '', tail: '\n\n' },
  answerWords: ['true', 'false'],
  toMultipleChoice: (doc) => multipleChoice(`Question: ${doc.question.replace(/\?$/, '')}?\nAnswer:`, ['no', 'yes'], doc.answer === 'true' ? 1 : 0),
  loglikelihoodMetrics: ['acc'],
});
