// Builds a MultipleChoice the way lm-evaluation-harness builds its requests (lm_eval/api/task.py
// construct_requests): continuation = target_delimiter + choice, and acc_norm divides by the length of
// the choice text alone (process_results' `completion_len`).
import type { MultipleChoice } from './types.ts';

export const TARGET_DELIMITER = ' ';

export function multipleChoice(context: string, choiceTexts: readonly string[], gold: number): MultipleChoice {
  return {
    context,
    choices: choiceTexts.map((c) => TARGET_DELIMITER + c),
    gold,
    normLengths: choiceTexts.map((c) => c.length),
  };
}

export const LETTERS = ['A', 'B', 'C', 'D', 'E'] as const;

/**
 * The loglikelihood requests of a MultipleChoice, in choice order: (context, choice i), or with
 * per-choice contexts (winogrande's partial evaluation) (contexts[i], choice i).
 */
export function multipleChoiceRequests(mc: MultipleChoice): { context: string; continuation: string }[] {
  return mc.choices.map((continuation, i) => ({ context: mc.contexts?.[i] ?? mc.context, continuation }));
}
