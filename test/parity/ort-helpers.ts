// Shared fixtures of the ORT parity tests: tiny checkpoints in a private cache, and a weight source
// that sharpens the random weights so that attention, RoPE and routing are far from uniform (with
// HF's init std 0.02 every attention row is nearly flat, and a wrong rotation would barely show).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCheckpointDir, type Checkpoint } from '../../runners/hf/checkpoint.ts';
import { CheckpointWeights } from '../../runners/hf/weights.ts';
import type { TensorSource } from '../../runners/reference-weights.ts';
import { ensureTinyCheckpoint } from '../../runners/tiny.ts';

export const TINY_IDS = ['tiny-llama-1', 'tiny-llama-2', 'tiny-llama-3', 'tiny-llama-3.1', 'tiny-llama-3.2', 'tiny-llama-3.3', 'tiny-llama-4'] as const;

export function tinyCache(prefix: string): { checkpoint: (id: string) => Checkpoint; cleanup: () => void } {
  const root = mkdtempSync(join(tmpdir(), prefix));
  return {
    checkpoint: (id) => readCheckpointDir(ensureTinyCheckpoint(id, { env: { LLAMA_EVAL_CACHE: root } }), id, 'tiny'),
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** All weights of a checkpoint, read once, with matrices (not norms or biases) multiplied by `factor`. */
export function sharpenedWeights(checkpoint: Checkpoint, factor: number): TensorSource {
  const weights = CheckpointWeights.open(checkpoint.dir);
  const tensors = new Map<string, Float32Array>();
  try {
    for (const name of weights.names()) {
      const data = weights.readFloat32(name);
      if (!name.endsWith('norm.weight') && !name.endsWith('.bias')) for (let i = 0; i < data.length; i++) data[i] = data[i]! * factor;
      tensors.set(name, data);
    }
  } finally {
    weights.close();
  }
  return {
    has: (name) => tensors.has(name),
    readFloat32: (name, options) => {
      const data = tensors.get(name);
      if (!data) throw new Error(`no tensor ${name}`);
      const expected = options?.expectShape?.reduce((a, b) => a * b, 1);
      if (expected !== undefined && expected !== data.length) throw new Error(`tensor ${name}: ${data.length} elements, expected ${expected}`);
      return data;
    },
  };
}

/** Deterministic token ids spread over the vocabulary. */
export function spreadIds(n: number, vocab: number, salt = 0): number[] {
  return Array.from({ length: n }, (_, i) => (i * 7919 + 13 + salt * 104729) % vocab);
}

export function maxAbsDiff(a: readonly (number | null)[], b: readonly (number | null)[]): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let max = 0;
  a.forEach((x, i) => {
    const y = b[i];
    if ((x === null) !== (y === null)) throw new Error(`entry ${i}: null mismatch`);
    if (x !== null && y !== null && y !== undefined) max = Math.max(max, Math.abs(x - y));
  });
  return max;
}
