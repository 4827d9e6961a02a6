// One paired test per task: McNemar exact when every item scored 0 or 1 (accuracy, exact match),
// a paired bootstrap CI otherwise (F1, BLEU, per-item log-likelihoods). Items scored in only
// one run are left out: a paired test needs both halves of every pair.
import { pairedBootstrap } from './stats/bootstrap.ts';
import { discordantPairs, mcnemarExact } from './stats/mcnemar.ts';

export interface FlippedItem {
  doc_id: string;
  a: number;
  b: number;
}

export interface PairedTest {
  test: 'mcnemar' | 'bootstrap';
  /** Items scored in both runs. */
  n: number;
  /** Mean of B - A over the paired items. */
  diff: number;
  pValue: number;
  /** Bootstrap percentile interval of the mean difference; McNemar reports none. */
  ci: [number, number] | null;
  /** McNemar's discordant counts: b = A right & B wrong, c = A wrong & B right. */
  discordant: { b: number; c: number } | null;
  /** Items whose value changed, largest change first. */
  flipped: FlippedItem[];
}

export interface PairedTestOptions {
  alpha: number;
  resamples?: number;
  seed?: number;
}

export function pairedTest(a: Map<string, number>, b: Map<string, number>, options: PairedTestOptions): PairedTest | null {
  const ids = [...a.keys()].filter((id) => b.has(id));
  if (ids.length === 0) return null;
  const xa = ids.map((id) => a.get(id) ?? 0);
  const xb = ids.map((id) => b.get(id) ?? 0);
  const flipped = ids
    .map((doc_id, i) => ({ doc_id, a: xa[i] ?? 0, b: xb[i] ?? 0 }))
    .filter((f) => f.a !== f.b)
    .sort((p, q) => Math.abs(q.b - q.a) - Math.abs(p.b - p.a));
  const diff = xb.reduce((s, x, i) => s + x - (xa[i] ?? 0), 0) / ids.length;
  const binary = [...xa, ...xb].every((x) => x === 0 || x === 1);
  if (binary) {
    const d = discordantPairs(xa, xb);
    return { test: 'mcnemar', n: ids.length, diff, pValue: mcnemarExact(d.b, d.c).pValue, ci: null, discordant: d, flipped };
  }
  const boot = pairedBootstrap(xa, xb, { alpha: options.alpha, resamples: options.resamples, seed: options.seed });
  return { test: 'bootstrap', n: ids.length, diff, pValue: boot.pValue, ci: [boot.low, boot.high], discordant: null, flipped };
}
