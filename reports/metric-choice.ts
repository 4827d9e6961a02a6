// Which metric stands for a task, and which way is better. lm-evaluation-harness declares
// `higher_is_better` per metric; records do not carry it, so the names it marks lower-better
// are listed here.
import type { TaskScore } from './summary-types.ts';

const LOWER_IS_BETTER = /(perplexity|bits_per_byte|byte_perplexity|loss|ter)$/;

export function higherIsBetter(metric: string): boolean {
  return !LOWER_IS_BETTER.test(metric);
}

/**
 * The task's score under `preferred` (e.g. acc) if it has one, else its first metric in record
 * order: gsm8k reports exact_match, not acc, and must still appear in an acc table.
 */
export function primaryScore(scores: readonly TaskScore[], task: string, preferred: string): TaskScore | undefined {
  const mine = scores.filter((s) => s.task === task);
  return mine.find((s) => s.metric === preferred) ?? mine[0];
}

/** Tasks in first-seen order, so tables follow the suite's order rather than the alphabet. */
export function tasksOf(scores: readonly { task: string | null }[]): string[] {
  const seen = new Set<string>();
  for (const s of scores) if (s.task !== null) seen.add(s.task);
  return [...seen];
}
