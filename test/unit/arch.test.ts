import { describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../runners/arch.ts';
import { InputError } from '../../harness/errors.ts';
import { zooEntry } from '../../harness/zoo.ts';

const llama7b = () => structuredClone(zooEntry('llama-1-7b')!.config!) as Record<string, unknown>;

describe('parseModelConfig', () => {
  it('applies the HF LlamaConfig defaults for absent fields', () => {
    // transformers LlamaConfig: num_key_value_heads defaults to num_attention_heads,
    // head_dim to hidden_size / num_attention_heads, rope_theta to 10000.
    const a = parseModelConfig(llama7b(), 'x').text;
    expect(a.numKvHeads).toBe(32);
    expect(a.headDim).toBe(128);
    expect(a.ropeTheta).toBe(10000);
    expect(a.ropeScaling).toBeNull();
  });

  it('names a missing field', () => {
    const c = llama7b();
    delete c.hidden_size;
    expect(() => parseModelConfig(c, 'ckpt/config.json')).toThrow(/ckpt\/config.json: missing field hidden_size/);
    try {
      parseModelConfig(c, 'ckpt/config.json');
    } catch (e) {
      expect(e).toBeInstanceOf(InputError);
    }
  });

  it('names a missing nested field of a multimodal config', () => {
    const c = { model_type: 'mllama', text_config: { vocab_size: 10 }, vision_config: {} };
    expect(() => parseModelConfig(c, 'c.json')).toThrow(/missing field text_config\.hidden_size/);
  });

  it('names a wrongly typed field', () => {
    const c = llama7b();
    c.num_hidden_layers = '32';
    expect(() => parseModelConfig(c, 'c.json')).toThrow(/bad field num_hidden_layers/);
  });

  it('refuses an unsupported model_type and lists the supported ones', () => {
    expect(() => parseModelConfig({ model_type: 'gpt2' }, 'c.json')).toThrow(/unsupported model_type "gpt2" \(supported: llama, /);
  });

  it('refuses heads that are not a multiple of the KV heads', () => {
    const c = { ...llama7b(), num_key_value_heads: 5 };
    expect(() => parseModelConfig(c, 'c.json')).toThrow(/not a multiple of num_key_value_heads 5/);
  });

  it('reads the llama3 rope_scaling of Llama 3.1', () => {
    // meta-llama/Llama-3.1-8B config.json: factor 8, low 1, high 4, original 8192.
    const a = parseModelConfig(zooEntry('llama-3.1-8b')!.config, 'x').text;
    expect(a.ropeScaling).toEqual({ ropeType: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
  });

  it('reads the legacy `type` key of linear rope scaling', () => {
    const a = parseModelConfig({ ...llama7b(), rope_scaling: { type: 'linear', factor: 4 } }, 'x').text;
    expect(a.ropeScaling).toMatchObject({ ropeType: 'linear', factor: 4 });
  });

  it('derives Llama 4 MoE and NoPE layers as HF Llama4TextConfig does', () => {
    // Llama4TextConfig: moe_layers = range(step-1, L, step); no_rope_layers[i] = 0 marks NoPE.
    const a = parseModelConfig(zooEntry('tiny-llama-4')!.config, 'x').text;
    expect(a.moe?.moeLayers).toEqual([1, 3]);
    expect(a.noRopeLayers).toEqual([3]);
    expect(a.attentionChunkSize).toBe(16);
    expect(a.useQkNorm).toBe(true);
  });
});
