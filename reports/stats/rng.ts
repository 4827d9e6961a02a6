// A seeded PRNG so a bootstrap CI is the same number on every machine and every re-run of the
// nightly job (Math.random would make a verdict flap). mulberry32: 32-bit state, period 2^32,
// plenty for a few thousand resamples of a few thousand items.
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
