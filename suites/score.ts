// Scoring: lm-evaluation-harness's multiple-choice acc/acc_norm and mean/stderr, and the answer
// extraction of LLM-Adapters' evaluation scripts for generated responses.
//   lm-eval: lm_eval/api/task.py ConfigurableTask.process_results (multiple_choice branch),
//            lm_eval/api/metrics.py mean / mean_stderr / sample_stddev.
//   LLM-Adapters (AGI-Edgerunners/LLM-Adapters @816657208af4): commonsense_evaluate.py extract_answer,
//            evaluate.py extract_answer_number / extract_answer_letter and its `miss = 0.001` tolerance.
import type { MultipleChoice } from './types.ts';

/** numpy.argmax: the first index of the maximum; a NaN wins (numpy treats it as the maximum). */
export function argmax(values: readonly number[]): number {
  let best = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (Number.isNaN(v)) return i;
    if (v > (values[best] as number)) best = i;
  }
  return best;
}

/**
 * acc: argmax of the summed log-likelihoods is the gold index. acc_norm: argmax of loglikelihood
 * divided by the choice's length in characters (lm-eval's `completion_len`, the doc_to_choice text
 * without the target delimiter), so long answers are not penalised for having more tokens.
 */
export function scoreMultipleChoice(mc: MultipleChoice, logprobs: readonly number[]): { acc: number; acc_norm: number } {
  if (logprobs.length !== mc.choices.length) {
    throw new Error(`scoreMultipleChoice: ${logprobs.length} loglikelihoods for ${mc.choices.length} choices`);
  }
  const lengths = mc.normLengths ?? mc.choices.map((c) => c.length);
  const pred = argmax(logprobs);
  const predNorm = argmax(logprobs.map((ll, i) => ll / (lengths[i] as number)));
  return { acc: pred === mc.gold ? 1 : 0, acc_norm: predNorm === mc.gold ? 1 : 0 };
}

/** lm-eval's `mean` with `mean_stderr`: sample standard deviation (ddof=1) over sqrt(n); null below n=2. */
export function meanStderr(values: readonly number[]): { value: number; stderr: number | null } {
  const n = values.length;
  if (n === 0) return { value: NaN, stderr: null };
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { value: mean, stderr: null };
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1);
  return { value: mean, stderr: Math.sqrt(variance) / Math.sqrt(n) };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * commonsense_evaluate.py extract_answer: `re.findall('w1|w2|...', sentence.strip())[0]`, or '' when
 * none. Case-sensitive, anywhere in the text (so 'answer1' inside 'answer12' counts), as upstream.
 */
export function extractFirstOption(response: string, words: readonly string[]): string {
  const match = new RegExp(words.map(escapeRegExp).join('|')).exec(response.trim());
  return match ? match[0] : '';
}

/**
 * evaluate.py extract_answer_number: drop commas, take the last `-?\d+\.?\d*`, as a float; Infinity
 * when there is none (upstream's float('inf'), which then never matches a label).
 */
export function extractLastNumber(response: string): number {
  const matches = response.replace(/,/g, '').match(/-?\d+\.?\d*/g);
  const last = matches?.[matches.length - 1];
  return last === undefined ? Infinity : Number(last);
}

/** evaluate.py's comparison for math answers: |label - prediction| <= 0.001. */
export const NUMERIC_TOLERANCE = 0.001;

export function numericMatch(label: number, predicted: number): boolean {
  return Math.abs(label - predicted) <= NUMERIC_TOLERANCE;
}

/** evaluate.py extract_answer_letter (AQuA): the first of A-E anywhere in the stripped text, or ''. */
export function extractAnswerLetter(response: string): string {
  return /A|B|C|D|E/.exec(response.trim())?.[0] ?? '';
}

/**
 * lm-eval's generate_until exact_match as LegalBench's template configures it: the
 * `remove_whitespace` filter (lm_eval/filters/extraction.py WhitespaceFilter: `resp.strip()`), then
 * exact_match_hf_evaluate with ignore_case and ignore_punctuation (Python's string.punctuation removed
 * from both sides).
 */
export function legalExactMatch(response: string, target: string): number {
  const punctuation = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/g;
  const norm = (s: string): string => s.toLowerCase().replace(punctuation, '');
  return norm(response.trim()) === norm(target) ? 1 : 0;
}
