// Scoring of medical VQA answers as the benchmarks report them: closed (yes/no) questions by
// accuracy, open questions by exact match, token F1 and token recall (VQA-RAD / SLAKE report closed
// and open accuracy; PathVQA reports yes/no accuracy and open exact match / F1; LLaVA-Med reports
// open-question recall of the ground-truth tokens). Text normalisation and token F1 are SQuAD v1.1's
// official evaluate script (`normalize_answer`, `f1_score`): lower case, drop punctuation and the
// articles a/an/the, collapse whitespace; F1 over the multiset of shared tokens.

const PUNCTUATION = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/g; // Python string.punctuation

export function normalizeAnswer(text: string): string {
  return text.toLowerCase().replace(PUNCTUATION, '').replace(/\b(a|an|the)\b/g, ' ').split(/\s+/).filter(Boolean).join(' ');
}

function tokens(text: string): string[] {
  const n = normalizeAnswer(text);
  return n === '' ? [] : n.split(' ');
}

/** Shared tokens, counted as a multiset (Python collections.Counter intersection). */
function sharedCount(pred: string[], gold: string[]): number {
  const counts = new Map<string, number>();
  for (const t of gold) counts.set(t, (counts.get(t) ?? 0) + 1);
  let same = 0;
  for (const t of pred) {
    const c = counts.get(t) ?? 0;
    if (c > 0) {
      same++;
      counts.set(t, c - 1);
    }
  }
  return same;
}

/** SQuAD v1.1 f1_score. */
export function tokenF1(prediction: string, gold: string): number {
  const p = tokens(prediction);
  const g = tokens(gold);
  const same = sharedCount(p, g);
  if (same === 0) return 0;
  const precision = same / p.length;
  const recall = same / g.length;
  return (2 * precision * recall) / (precision + recall);
}

/** Fraction of the gold answer's tokens found in the prediction (LLaVA-Med's open-question recall). */
export function tokenRecall(prediction: string, gold: string): number {
  const g = tokens(gold);
  return g.length === 0 ? 0 : sharedCount(tokens(prediction), g) / g.length;
}

export function exactMatch(prediction: string, gold: string): number {
  return normalizeAnswer(prediction) === normalizeAnswer(gold) ? 1 : 0;
}

/**
 * Closed-question accuracy: the first standalone "yes" or "no" in the response is the answer.
 * (LLaVA-Med tests `gold in prediction` as a substring, which counts "no" inside "not" or "know";
 * a whole-word match avoids that.)
 */
export function closedAccuracy(prediction: string, gold: 'yes' | 'no'): number {
  const first = tokens(prediction).find((t) => t === 'yes' || t === 'no');
  return first === gold ? 1 : 0;
}
