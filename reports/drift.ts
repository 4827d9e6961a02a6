// How far an adapted model's next-token distribution moved from the base model's, over the same
// tokens: the statistics `llama-perplexity --kl-divergence` prints (llama.cpp
// tools/perplexity/perplexity.cpp, kl_divergence()), computed here in float64 from full
// per-position distributions. Differences from llama.cpp, both deliberate: the base
// distribution is exact (llama.cpp stores it as uint16 over a 16-nat window and drops terms with
// log p_base < -16), and a stderr that llama.cpp prints as 0 for <= 10 positions is null here,
// since 0 would claim certainty.
import { InputError } from '../results/errors.ts';

/** One row per scored position: log-probabilities (or logits: rows are log-softmax-normalized) over the vocabulary. */
export type LogProbRows = readonly (readonly number[] | Float64Array | Float32Array)[];

export interface Estimate {
  value: number;
  /** Standard error; null when there are too few positions (<= 10) to estimate it. */
  stderr: number | null;
}

export interface DriftStats {
  /** Scored positions. */
  positions: number;
  /** KL(base || adapted) in nats per position, mean with stderr. */
  kl_mean: Estimate;
  kl_median: number;
  kl_p99: number;
  kl_p999: number;
  kl_max: number;
  /** Per-position KL, in input order (reports draw its distribution). */
  kl_per_position: number[];
  /** Fraction of positions where both models' most likely token is the same (first index on ties). */
  top1_agreement: Estimate;
  ppl_base: number;
  ppl_adapted: number;
  /** ln(PPL(adapted)/PPL(base)) = mean NLL difference, stderr from the paired covariance. */
  ln_ppl_ratio: Estimate;
  /** PPL(adapted)/PPL(base) = exp(ln_ppl_ratio), stderr by the delta method. */
  ppl_ratio: Estimate;
  /** RMS over positions of p_adapted(target) - p_base(target). */
  delta_p_rms: number;
}

function logSoftmax(row: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i]! > max) max = row[i]!;
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i]! - max);
  const lse = max + Math.log(sum);
  const out = new Float64Array(row.length);
  for (let i = 0; i < row.length; i++) out[i] = row[i]! - lse;
  return out;
}

/** Index of the first maximum, as llama.cpp picks the top token (strict > on later entries). */
function argmax(row: Float64Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

/** KL(p || q) for log-probability rows; terms with p = 0 contribute nothing (0 log 0 = 0). */
export function klDivergence(logP: ArrayLike<number>, logQ: ArrayLike<number>): number {
  let kl = 0;
  for (let i = 0; i < logP.length; i++) {
    const lp = logP[i]!;
    if (lp === -Infinity) continue;
    kl += Math.exp(lp) * (lp - logQ[i]!);
  }
  return kl;
}

/**
 * Linear interpolation between closest ranks over sorted values, llama.cpp's `percentile`
 * (the same as numpy's default method): position fraction * (n - 1).
 */
export function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) throw new InputError('percentile of no values: score at least one position');
  if (fraction <= 0) return sorted[0]!;
  if (fraction >= 1) return sorted[sorted.length - 1]!;
  const p = fraction * (sorted.length - 1);
  const ip = Math.floor(p);
  const w = p - ip;
  return (1 - w) * sorted[ip]! + w * sorted[Math.min(ip + 1, sorted.length - 1)]!;
}

/** llama.cpp's mean_and_uncertainty: mean and sqrt(population variance / (n - 1)). */
function meanAndStderr(sum: number, sum2: number, n: number): Estimate {
  const mean = sum / n;
  const variance = sum2 / n - mean * mean;
  return { value: mean, stderr: n > 10 ? (variance > 0 ? Math.sqrt(variance / (n - 1)) : 0) : null };
}

/** Throws InputError unless the rows are a valid pair over one vocabulary with in-range targets. */
export function checkDriftRows(base: LogProbRows, adapted: LogProbRows, targets: readonly number[]): void {
  if (base.length === 0) throw new InputError('drift: no positions to score; give a text of at least two tokens');
  if (base.length !== adapted.length || base.length !== targets.length) {
    throw new InputError(`drift: base has ${base.length} positions, adapted ${adapted.length}, targets ${targets.length}; both models must score the same tokens`);
  }
  base.forEach((row, i) => {
    const other = adapted[i]!;
    if (row.length !== other.length || row.length === 0) {
      throw new InputError(`drift: position ${i} has ${row.length} base log-probs but ${other.length} adapted; the models must share one vocabulary`);
    }
    const t = targets[i]!;
    if (!Number.isInteger(t) || t < 0 || t >= row.length) throw new InputError(`drift: target token ${t} at position ${i} is outside the vocabulary (size ${row.length})`);
    for (const r of [row, other]) {
      for (let j = 0; j < r.length; j++) {
        const v = r[j]!;
        if (Number.isNaN(v) || v === Infinity) throw new InputError(`drift: position ${i}, token ${j} has log-prob ${v}; expected finite values (or -Infinity for impossible tokens)`);
      }
    }
  });
}

/** What one scored position contributes; positions from many windows aggregate with driftFromPositions. */
export interface PositionDrift {
  kl: number;
  /** Both models' most likely token is the same. */
  sameTop1: boolean;
  /** -log p_adapted(target), -log p_base(target). */
  nll: number;
  nllBase: number;
}

/** One position's contribution: rows are log-probs or logits (log-softmax-normalized here). */
export function positionDrift(baseRow: ArrayLike<number>, adaptedRow: ArrayLike<number>, target: number): PositionDrift {
  const lb = logSoftmax(baseRow);
  const lq = logSoftmax(adaptedRow);
  return { kl: klDivergence(lb, lq), sameTop1: argmax(lb) === argmax(lq), nll: -lq[target]!, nllBase: -lb[target]! };
}

/**
 * Drift of `adapted` from `base`: row i of each is the distribution over the vocabulary for the
 * token at position i, and `targets[i]` is the token that actually came next (for perplexity).
 */
export function driftStats(base: LogProbRows, adapted: LogProbRows, targets: readonly number[]): DriftStats {
  checkDriftRows(base, adapted, targets);
  return driftFromPositions(base.map((row, i) => positionDrift(row, adapted[i]!, targets[i]!)));
}

/** The statistics over scored positions (in input order); a caller that streams windows checks its rows with checkDriftRows. */
export function driftFromPositions(positions: readonly PositionDrift[]): DriftStats {
  if (positions.length === 0) throw new InputError('drift: no positions to score; give a text of at least two tokens');
  const n = positions.length;
  const kls: number[] = [];
  let sumKl = 0, sumKl2 = 0, same = 0;
  let sumNll = 0, sumNll2 = 0, sumNllBase = 0, sumNllBase2 = 0, sumCross = 0, sumDp2 = 0;
  for (const { kl, sameTop1, nll, nllBase } of positions) {
    kls.push(kl);
    sumKl += kl;
    sumKl2 += kl * kl;
    if (sameTop1) same++;
    sumNll += nll; sumNll2 += nll * nll;
    sumNllBase += nllBase; sumNllBase2 += nllBase * nllBase;
    sumCross += nll * nllBase;
    const dp = Math.exp(-nll) - Math.exp(-nllBase);
    sumDp2 += dp * dp;
  }
  const sorted = [...kls].sort((a, b) => a - b);
  const logPpl = meanAndStderr(sumNll, sumNll2, n);
  const logPplBase = meanAndStderr(sumNllBase, sumNllBase2, n);
  // llama.cpp's covariance(): 0 below 10 positions; here the ratio's stderr is null there anyway.
  const cov = (sumCross / n - (sumNll / n) * (sumNllBase / n)) / (n - 1);
  const lnRatio = logPpl.value - logPplBase.value;
  const lnRatioSe = logPpl.stderr === null || logPplBase.stderr === null
    ? null
    : Math.sqrt(Math.max(0, logPpl.stderr ** 2 + logPplBase.stderr ** 2 - 2 * cov));
  const ratio = Math.exp(lnRatio);
  const top1 = same / n;
  return {
    positions: n,
    kl_mean: meanAndStderr(sumKl, sumKl2, n),
    kl_median: percentile(sorted, 0.5),
    kl_p99: percentile(sorted, 0.99),
    kl_p999: percentile(sorted, 0.999),
    kl_max: sorted[n - 1]!,
    kl_per_position: kls,
    top1_agreement: { value: top1, stderr: n > 1 ? Math.sqrt((top1 * (1 - top1)) / (n - 1)) : null },
    ppl_base: Math.exp(logPplBase.value),
    ppl_adapted: Math.exp(logPpl.value),
    ln_ppl_ratio: { value: lnRatio, stderr: lnRatioSe },
    ppl_ratio: { value: ratio, stderr: lnRatioSe === null ? null : ratio * lnRatioSe },
    delta_p_rms: Math.sqrt(sumDp2 / n),
  };
}
