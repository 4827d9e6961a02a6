// The reference backend's greedy decoding for `generate`: a full float64 forward per token (no KV
// cache, so only for small models), argmax with the first index winning ties (torch.argmax).

/** Greedy ids after `prompt`: `lastRow(ids)` is the logits row predicting the next token; stops after an eos id or `maxNew`. */
export function referenceGreedyIds(prompt: readonly number[], maxNew: number, eos: ReadonlySet<number>, lastRow: (ids: readonly number[]) => ArrayLike<number>): number[] {
  const ids = [...prompt];
  const generated: number[] = [];
  while (generated.length < maxNew) {
    const row = lastRow(ids);
    let next = 0;
    for (let i = 1; i < row.length; i++) if (row[i]! > row[next]!) next = i;
    generated.push(next);
    ids.push(next);
    if (eos.has(next)) break;
  }
  return generated;
}
