// Social IQa. Loglikelihood: lm-eval lm_eval/tasks/siqa/siqa.yaml, "Q: {{context}} {{question}}\nA:",
//   choices [answerA, answerB, answerC], metric acc. LLM-Adapters joins context and question with one
//   space (dataset/social_i_qa/test.json), which is the same text.
// Generation: LLM-Adapters commonsense_evaluate.py (extract_answer: first of answer1..answer5).
import { multipleChoice } from '../multiple-choice.ts';
import { ANSWER_WORDS } from './answer-words.ts';
import { commonsenseTask } from './inline.ts';

export const siqa = commonsenseTask({
  name: 'siqa',
  bundledDir: 'siqa',
  layout: { prefix: 'Please choose the correct answer to the question: ', label: 'Answer', between: ' ', tail: '\n\n' },
  answerWords: ANSWER_WORDS,
  toMultipleChoice: (doc) => multipleChoice(`Q: ${doc.question}\nA:`, doc.options, doc.gold),
  loglikelihoodMetrics: ['acc'],
});
