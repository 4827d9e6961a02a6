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
  {
    id: 'llama-1-13b',
    // pyllama README parameter table: "llama-13B | 32000 | 5120 | 40 | 13824 | 13015864320".
    total: 13_015_864_320,
    source: 'pyllama README table',
  },
  {
    id: 'llama-1-33b',
    // pyllama README: "llama-30B ... 32528943616" and its quant log for decapoda-research/llama-30b-hf
    // "LLaMAForCausalLM<trainable_params:32528943616 ...>".
    total: 32_528_943_616,
    source: 'pyllama README table / llama_quant log',
  },
  {
    id: 'llama-1-65b',
    // pyllama llama_quant log for decapoda-research/llama-65b-hf: "Number of parameters: 65285660672".
    total: 65_285_660_672,
    source: 'pyllama llama_quant log',
  },
  {
    id: 'llama-2-13b',
    // HF API safetensors totals used by public model-size tables: "meta-llama/Llama-2-13b-chat-hf":
    // 13015864320 (same architecture as the base model).
    total: 13_015_864_320,
    source: 'HF API safetensors total of Llama-2-13b-chat-hf',
  },
  {
    id: 'llama-3-70b',
    // Meta-Llama-3-70B has the architecture of Llama-3.1-70B bar rope scaling and context length,
    // neither of which adds parameters; HF API safetensors total of Llama-3.1-70B (below).
    total: 70_553_706_496,
    source: 'HF API safetensors total of Llama-3.1-70B (same shapes)',
  },
  {
    id: 'llama-3.1-70b',
    // HF API: "meta-llama/Llama-3.1-70B": (70553706496, rev 349b2ddb53ce8f2849a6c168a81980ab25258dac).
    total: 70_553_706_496,
    source: 'HF API safetensors total',
  },
  {
    id: 'llama-3.1-405b',
    // HF API: "meta-llama/Llama-3.1-405B": (405853388800, rev b906e4dc842aa489c962f9db26554dcfdde901fe).
    // (The first 405B upload had 16 KV heads: 410,081,247,232; the zoo follows the current config, 8.)
    total: 405_853_388_800,
    source: 'HF API safetensors total',
  },
  {
    id: 'llama-3.2-1b',
    // HF API "meta-llama/Llama-3.2-1B-Instruct": ('llama3.2', 1235814400); tied lm_head counted once.
    total: 1_235_814_400,
    source: 'HF API safetensors total',
  },
  {
    id: 'llama-3.2-3b',
    // meta-llama/Llama-3.2-3B-Instruct rev 0cb88a4f: safetensors.parameters.BF16 = 3212749824.
    total: 3_212_749_824,
    source: 'HF API safetensors.parameters.BF16',
  },
  {
    id: 'llama-3.3-70b',
    // HF API "meta-llama/Llama-3.3-70B-Instruct": 70553706496 (rev 6f6073b423013f6a7d4d9f39144961bfbfbc386b).
    total: 70_553_706_496,
    source: 'HF API safetensors total',
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
