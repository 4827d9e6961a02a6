// One random stream per (seed, tensor name), so adding a tensor never shifts another's values
// (the same scheme as runners/tiny.ts uses for checkpoints).

/** FNV-1a 32-bit hash of `${seed}:${name}`. */
export function streamSeed(seed: number, name: string): number {
  let h = 0x811c9dc5;
  for (const ch of `${seed}:${name}`) {
    h ^= ch.codePointAt(0)!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
