// Drift over a token stream: cut into windows the model can attend over, each opened with the
// tokens the tokenizer puts before any text (BOS), as llama-perplexity starts each chunk with BOS.
// Every position after the window's first is scored, so each text token is predicted exactly once.
// Rows are reduced to per-position figures window by window: a 128k-token vocabulary times a few
// hundred positions would not fit in memory as float64 rows.
import { checkDriftRows, driftFromPositions, positionDrift, type DriftStats, type PositionDrift } from '../../reports/drift.ts';
import { InputError } from '../../results/errors.ts';
import type { DriftPair } from './pair.ts';
import { openScorer, type LogitScorer } from './scorer.ts';

export interface WindowOptions {
  /** Tokens per window, prefix included. */
  ctx: number;
  /** Scored positions in all (the stream is cut off after this many). */
  maxTokens: number;
}

/** Windows of at most `ctx` ids: `prefix` then the next text tokens; scoring stops at maxTokens. */
export function driftWindows(tokens: readonly number[], prefix: readonly number[], options: WindowOptions): number[][] {
  const { ctx, maxTokens } = options;
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new InputError(`--max-tokens ${maxTokens}: expected a positive integer`);
  // With a prefix, the window's first text token is scored too (after BOS); without, it only conditions.
  const perWindow = prefix.length > 0 ? ctx - prefix.length : ctx - 1;
  if (!Number.isInteger(ctx) || perWindow < 1) throw new InputError(`--ctx ${ctx}: expected an integer above ${prefix.length + (prefix.length > 0 ? 0 : 1)} (room for the prefix and one scored token)`);
  const windows: number[][] = [];
  let scored = 0;
  let i = 0;
  while (i < tokens.length && scored < maxTokens) {
    const take = Math.min(perWindow, maxTokens - scored);
    const body = tokens.slice(i, i + (prefix.length > 0 ? take : take + 1));
    const window = [...prefix, ...body];
    if (window.length < 2) break;
    windows.push(window);
    scored += window.length - 1;
    // Without a prefix the last token of a window opens the next one, so none goes unscored.
    i += prefix.length > 0 ? body.length : body.length - 1;
  }
  if (windows.length === 0) throw new InputError('drift: the text has fewer than two tokens; nothing to score');
  return windows;
}

async function withScorer<T>(open: Promise<LogitScorer>, work: (s: LogitScorer) => Promise<T>): Promise<T> {
  const scorer = await open;
  try {
    return await work(scorer);
  } finally {
    await scorer.close();
  }
}

/** KL(base || adapted), top-1 agreement and PPL ratio over `windows` (the same ids on both sides). */
export async function measureDrift(pair: DriftPair, windows: readonly (readonly number[])[], rawConfig: Record<string, unknown>): Promise<DriftStats> {
  const vocab = pair.base.model.text.vocabSize;
  for (const w of windows) {
    const bad = w.find((id) => !Number.isInteger(id) || id < 0 || id >= vocab);
    if (bad !== undefined) throw new InputError(`drift: token id ${bad} is outside the vocabulary (vocab_size ${vocab})`);
  }
  return withScorer(openScorer(pair.base.model, pair.base.backend, rawConfig), (base) =>
    withScorer(openScorer(pair.adapted.model, pair.adapted.backend, rawConfig), async (adapted) => {
      const positions: PositionDrift[] = [];
      for (const w of windows) {
        const n = w.length - 1;
        const b = (await base.logits(w)).slice(0, n);
        const a = (await adapted.logits(w)).slice(0, n);
        const targets = w.slice(1);
        checkDriftRows(b, a, targets);
        b.forEach((row, i) => positions.push(positionDrift(row, a[i]!, targets[i]!)));
      }
      return driftFromPositions(positions);
    }));
}
