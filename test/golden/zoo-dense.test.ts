// Exact parameter counts of the dense LLaMA checkpoints against independently published figures.
// A safetensors index `total_size` is in bytes: for bf16/fp16 weights, parameters = total_size / 2
// — except that older LLaMA 1/2 conversions also saved each layer's `rotary_emb.inv_freq` buffer
// (head_dim / 2 fp32 values), which is not a parameter and must be taken out first.
import { describe, expect, it } from 'vitest';
import { countModelParams } from '../../harness/params/index.ts';
import { resolveModel } from '../../harness/zoo.ts';

function count(id: string) {
  return countModelParams(resolveModel(id).arch!);
}

/** Parameters in a 16-bit safetensors index total_size that also holds `layers` fp32 inv_freq buffers. */
function fromTotalSize(totalSize: number, invFreq: { layers: number; headDim: number } | null = null): number {
  const buffers = invFreq ? invFreq.layers * (invFreq.headDim / 2) * 4 : 0;
  return (totalSize - buffers) / 2;
}

interface Golden {
  id: string;
  total: number;
  source: string;
}

const GOLDEN: Golden[] = [
  {
    id: 'llama-1-7b',
    // huggyllama/llama-7b and meta-llama/Llama-2-7b-hf model.safetensors.index.json:
    // "total_size": 13476839424, whose weight_map includes 32 `rotary_emb.inv_freq` (64 fp32 each).
    total: fromTotalSize(13_476_839_424, { layers: 32, headDim: 128 }),
    source: 'safetensors index total_size',
  },
  {
    id: 'llama-2-7b',
    total: fromTotalSize(13_476_839_424, { layers: 32, headDim: 128 }),
    source: 'meta-llama/Llama-2-7b-hf model.safetensors.index.json total_size (with inv_freq)',
  },
  {
    id: 'llama-3-8b',
    // meta-llama/Meta-Llama-3-8B model.safetensors.index.json: "total_size": 16060522496 (bf16).
    total: fromTotalSize(16_060_522_496),
    source: 'safetensors index total_size',
  },
  {
    id: 'llama-3.1-8b',
    // meta-llama/Llama-3.1-8B: same architecture and index total_size as Meta-Llama-3-8B.
    total: fromTotalSize(16_060_522_496),
    source: 'safetensors index total_size',
  },
];

describe('dense zoo parameter counts match published figures', () => {
  it.each(GOLDEN)('$id = $total ($source)', ({ id, total }) => {
    expect(count(id).total).toBe(total);
    // Dense models: every parameter is active for every token.
    expect(count(id).active).toBe(total);
  });

  it('LLaMA-7B is 6,738,415,616 and Llama-3-8B 8,030,261,248 (issue figures)', () => {
    expect(count('llama-1-7b').total).toBe(6_738_415_616);
    expect(count('llama-3-8b').total).toBe(8_030_261_248);
    expect(count('llama-2-70b').total).toBe(68_976_648_192);
  });

  it('tied embeddings are counted once (Llama 3.2 1B/3B)', () => {
    const c = count('llama-3.2-1b');
    expect(c.components.lm_head).toBeUndefined();
    expect(c.embedding).toBe(128256 * 2048);
  });

  it('components sum to the total', () => {
    for (const id of ['llama-1-65b', 'llama-3.1-405b', 'llama-3.2-3b']) {
      const c = count(id);
      expect(Object.values(c.components).reduce((a, b) => a + b, 0)).toBe(c.total);
    }
  });
});
