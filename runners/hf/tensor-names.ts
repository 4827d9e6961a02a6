// The HF tensor names and shapes of a LLaMA-family text checkpoint, derived from its architecture:
// `LlamaForCausalLM` (modeling_llama.py) and `Llama4ForCausalLM` (modeling_llama4.py). One list,
// used to generate tiny checkpoints and to check a loaded checkpoint's shapes against config.json.
import type { ModelArch } from '../arch.ts';

export interface TensorSpec {
  name: string;
  shape: number[];
  /** How HF's `_init_weights` initialises it: normal(0, initializer_range), ones (norms), zeros (biases). */
  init: 'normal' | 'ones' | 'zeros';
}

export function layerPrefix(i: number): string {
  return `model.layers.${i}`;
}

export function textTensorSpecs(arch: ModelArch): TensorSpec[] {
  if (arch.modelType === 'mllama') throw new Error('mllama (3.2 Vision) checkpoints are not generated or run by the reference yet');
  const t = arch.text;
  const h = t.hiddenSize;
  const qDim = t.numHeads * t.headDim;
  const kvDim = t.numKvHeads * t.headDim;
  const specs: TensorSpec[] = [{ name: 'model.embed_tokens.weight', shape: [t.vocabSize, h], init: 'normal' }];
  const linear = (name: string, out: number, inp: number, bias: boolean) => {
    specs.push({ name: `${name}.weight`, shape: [out, inp], init: 'normal' });
    if (bias) specs.push({ name: `${name}.bias`, shape: [out], init: 'zeros' });
  };
  const mlp = (prefix: string, inter: number) => {
    linear(`${prefix}.gate_proj`, inter, h, t.mlpBias);
    linear(`${prefix}.up_proj`, inter, h, t.mlpBias);
    linear(`${prefix}.down_proj`, h, inter, t.mlpBias);
  };
  for (let i = 0; i < t.numLayers; i++) {
    const p = layerPrefix(i);
    specs.push({ name: `${p}.input_layernorm.weight`, shape: [h], init: 'ones' });
    linear(`${p}.self_attn.q_proj`, qDim, h, t.attentionBias);
    linear(`${p}.self_attn.k_proj`, kvDim, h, t.attentionBias);
    linear(`${p}.self_attn.v_proj`, kvDim, h, t.attentionBias);
    linear(`${p}.self_attn.o_proj`, h, qDim, t.attentionBias);
    specs.push({ name: `${p}.post_attention_layernorm.weight`, shape: [h], init: 'ones' });
    if (arch.modelType === 'llama4') {
      const moe = t.moe!;
      if (moe.moeLayers.includes(i)) {
        // Llama4TextMoe: fused expert weights [E, H, 2I] (gate | up) and [E, I, H], router [E, H].
        const e = moe.numExperts;
        const inter = moe.expertIntermediateSize;
        specs.push({ name: `${p}.feed_forward.router.weight`, shape: [e, h], init: 'normal' });
        specs.push({ name: `${p}.feed_forward.experts.gate_up_proj`, shape: [e, h, 2 * inter], init: 'normal' });
        specs.push({ name: `${p}.feed_forward.experts.down_proj`, shape: [e, inter, h], init: 'normal' });
        mlp(`${p}.feed_forward.shared_expert`, inter);
      } else {
        mlp(`${p}.feed_forward`, t.intermediateSize);
      }
    } else {
      mlp(`${p}.mlp`, t.intermediateSize);
    }
  }
  specs.push({ name: 'model.norm.weight', shape: [h], init: 'ones' });
  if (!t.tieWordEmbeddings) specs.push({ name: 'lm_head.weight', shape: [t.vocabSize, h], init: 'normal' });
  return specs;
}
