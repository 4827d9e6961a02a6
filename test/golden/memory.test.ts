// Memory estimates against published claims. Each expectation names its source.
import { describe, expect, it } from 'vitest';
import { estimateMemory, NF4_BITS_PER_PARAM, type MemoryInput } from '../../harness/memory.ts';
import { paramsBreakdown } from '../../harness/params/report.ts';
import { resolveModel } from '../../harness/zoo.ts';

function estimate(model: string, peft: string | undefined, rest: Partial<MemoryInput>) {
  const { arch, base, peft: p, report } = paramsBreakdown(resolveModel(model), peft);
  return estimateMemory({
    arch: arch.text,
    params: base,
    peftAddedParams: p ? p.addedParams : null,
    trainableParams: report.trainable_params,
    mode: 'inference',
    dtype: 'bf16',
    seq: 512,
    batch: 1,
    optimizer: 'adamw',
    gradientCheckpointing: true,
    ...rest,
  });
}

const GB48 = 'L40S / A6000 48GB';
const GB80 = 'A100 / H100 80GB';

describe('memory estimate vs published claims', () => {
  it('NF4 with double quantization costs 4.127 bits per parameter', () => {
    // QLoRA paper (arXiv 2305.14314) §3: double quantization reduces the constants from
    // 32/64 = 0.5 bits to 8/64 + 32/(64·256) = 0.127 bits per parameter.
    expect(NF4_BITS_PER_PARAM - 4).toBeCloseTo(0.127, 3);
  });

  it('QLoRA fine-tuning of LLaMA-65B fits a single 48 GB GPU', () => {
    // QLoRA paper abstract: "reduces memory usage enough to finetune a 65B parameter model on a
    // single 48GB GPU"; setting of artidoro/qlora: NF4 + double quant, LoRA r=64 on all linear
    // layers, paged AdamW with 32-bit states, gradient checkpointing, batch 1.
    const m = estimate('llama-1-65b', 'qlora:r=64,alpha=16,targets=all-linear', { mode: 'finetune', dtype: 'nf4', seq: 512 });
    expect(m.fits[GB48]).toBe(true);
    expect(m.fits['RTX 4090 24GB']).toBe(false);
  });

  it('16-bit full fine-tuning of LLaMA-65B needs more than 780 GB', () => {
    // QLoRA paper §1: "regular 16-bit finetuning of a LLaMA 65B parameter model requires more
    // than 780 GB of GPU memory". bf16 weights + bf16 gradients + two fp32 Adam moments = 12 bytes
    // per parameter: 65,285,660,672 × 12 = 783.4 GB before activations.
    const m = estimate('llama-1-65b', undefined, { mode: 'finetune', dtype: 'bf16' });
    expect(m.weights_bytes + m.gradient_bytes + m.optimizer_bytes).toBe(65_285_660_672 * 12);
    expect(m.total_bytes).toBeGreaterThan(780e9);
    expect(m.fits['H200 141GB']).toBe(false);
  });

  it('Llama 4 Scout with int4 weights fits one 80 GB H100', () => {
    // Meta, "The Llama 4 herd" (2025-04-05): Scout "fits on a single NVIDIA H100 GPU" with
    // Int4 quantization.
    const m = estimate('llama-4-scout', undefined, { dtype: 'int4', seq: 4096 });
    expect(m.fits[GB80]).toBe(true);
    // ...and in bf16 it does not (109B parameters × 2 bytes = 218 GB).
    expect(estimate('llama-4-scout', undefined, { dtype: 'bf16', seq: 4096 }).fits[GB80]).toBe(false);
  });

  it('KV cache of a 13B (40 layers, hidden 5120) model is 800 KB per token in fp16', () => {
    // vLLM / PagedAttention paper (Kwon et al., SOSP 2023) §3: "the KV cache of a single token
    // demands 800 KB of space" for OPT-13B, whose 40 layers × 5120 hidden match LLaMA-13B:
    // 2 (K and V) × 5120 × 40 × 2 bytes = 819,200 bytes.
    const m = estimate('llama-1-13b', undefined, { seq: 1 });
    expect(m.kv_cache_bytes).toBe(819_200);
  });

  it('GQA shrinks the Llama-3-8B KV cache to 128 KiB per token', () => {
    // Meta-Llama-3-8B config: 32 layers, 8 KV heads of dim 128: 2 × 32 × 8 × 128 × 2 bytes.
    // Independent: the Llama 3 paper (arXiv 2407.21783) §3.2 adopts GQA with 8 KV heads.
    expect(estimate('llama-3-8b', undefined, { seq: 1 }).kv_cache_bytes).toBe(131_072);
  });

  it('fine-tuning keeps no KV cache and inference has no gradients', () => {
    const ft = estimate('llama-3-8b', 'lora:r=8', { mode: 'finetune' });
    expect(ft.kv_cache_bytes).toBe(0);
    const inf = estimate('llama-3-8b', 'lora:r=8', { mode: 'inference' });
    expect(inf.gradient_bytes + inf.optimizer_bytes).toBe(0);
  });

  it('8-bit optimizer states are a quarter of 32-bit ones (plus block constants)', () => {
    // bitsandbytes 8-bit optimizers (Dettmers et al., arXiv 2110.02861): 2 bytes per parameter
    // for Adam's two states instead of 8.
    const a = estimate('llama-3-8b', 'lora:r=16', { mode: 'finetune', optimizer: 'adamw' });
    const b = estimate('llama-3-8b', 'lora:r=16', { mode: 'finetune', optimizer: 'paged-adamw-8bit' });
    expect(b.optimizer_bytes / a.optimizer_bytes).toBeCloseTo((2 * (1 + 4 / 256)) / 8, 6);
  });

  it('rejects a non-positive sequence length', () => {
    expect(() => estimate('llama-3-8b', undefined, { seq: 0 })).toThrow(/--seq must be a positive integer/);
  });
});
