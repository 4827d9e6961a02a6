// The LLaMA ONNX graph's interface and op choice: transformers.js / optimum input and output names
// (so an exported model loads there), plain ONNX ops by default, contrib ops only when fused.
import { afterAll, describe, expect, it } from 'vitest';
import { buildLlamaGraph } from '../../runners/ort/llama-graph.ts';
import { decodeModel } from '../../runners/ort/onnx-builder.ts';
import { temperatureTuningFrom } from '../../runners/reference-weights.ts';
import { CheckpointWeights } from '../../runners/hf/weights.ts';
import { tinyCache } from '../parity/ort-helpers.ts';

const cache = tinyCache('ort-graph-');
afterAll(() => cache.cleanup());

function graphOf(id: string, fused: boolean) {
  const checkpoint = cache.checkpoint(id);
  const weights = CheckpointWeights.open(checkpoint.dir);
  try {
    const bytes = buildLlamaGraph(checkpoint.arch, weights, { temperatureTuning: temperatureTuningFrom(checkpoint.arch, checkpoint.config), fused });
    const graph = decodeModel(bytes).graph!;
    return { node: graph.node ?? [], input: graph.input ?? [], output: graph.output ?? [], initializer: graph.initializer ?? [] };
  } finally {
    weights.close();
  }
}

const count = (graph: ReturnType<typeof graphOf>, op: string) => graph.node.filter((n) => n.opType === op).length;

describe('LLaMA ONNX graph', () => {
  it('has the transformers.js input/output names and KV layout [batch, kv_heads, seq, head_dim]', () => {
    const graph = graphOf('tiny-llama-2', false); // 2 layers, 2 kv heads, head_dim 16
    expect(graph.input.map((i) => i.name)).toEqual([
      'input_ids', 'attention_mask', 'position_ids',
      'past_key_values.0.key', 'past_key_values.0.value', 'past_key_values.1.key', 'past_key_values.1.value',
    ]);
    expect(graph.output.map((o) => o.name)).toEqual(['logits', 'present.0.key', 'present.0.value', 'present.1.key', 'present.1.value']);
    const dims = graph.input[3]!.type!.tensorType!.shape!.dim!.map((d) => d.dimParam || Number(d.dimValue));
    expect(dims).toEqual(['batch_size', 2, 'past_sequence_length', 16]);
  });

  it('uses only default-domain ops unless fused', () => {
    const plain = graphOf('tiny-llama-2', false);
    expect(plain.node.filter((n) => n.domain === 'com.microsoft')).toEqual([]);
    expect(count(plain, 'SimplifiedLayerNormalization')).toBe(0);
  });

  it('fused: one GroupQueryAttention and two RotaryEmbedding per layer, residual adds fused into the norms', () => {
    const fused = graphOf('tiny-llama-2', true);
    expect(count(fused, 'GroupQueryAttention')).toBe(2);
    expect(count(fused, 'RotaryEmbedding')).toBe(4);
    // 2 layers x 2 norms + final norm = 5 RMSNorms: the first has no residual to add.
    expect(count(fused, 'SimplifiedLayerNormalization')).toBe(1);
    expect(count(fused, 'SkipSimplifiedLayerNormalization')).toBe(4);
  });

  it('fused Llama 4: chunked RoPE layers keep the plain attention, the NoPE layer gets GroupQueryAttention', () => {
    const fused = graphOf('tiny-llama-4', true); // no_rope_layers [1, 1, 1, 0]: layer 3 is NoPE
    expect(count(fused, 'GroupQueryAttention')).toBe(1);
    expect(count(fused, 'RotaryEmbedding')).toBe(0);
    expect(fused.initializer.some((i) => i.name === 'rotary_cos_cache')).toBe(false);
  });
});
