// Trainable parameters of a PEFT method on a LLaMA-family text model, counted the way the method's
// reference code builds its parameters (HF PEFT for LoRA/QLoRA/AdaptionPrompt, OpenGVLab/LLaMA-Adapter for
// LLaMA-Adapter V1/V2), so that `trainable` equals what `print_trainable_parameters()` (or the
// official training script) reports. Shapes come from runners/peft/spec/modules.ts and runners/arch-modules.ts, never from a
// model; target matching is runners/peft/spec/targets.ts.

import type { TextArch } from '../../runners/arch.ts';
import { InputError } from '../errors.ts';
import { expertParameters, moduleInstances, selfAttentionLayers } from '../../runners/peft/spec/modules.ts';
import type { AdapterV1Spec, AdapterV2Spec, ExcitorSpec, LoraSpec, PeftSpec } from '../../runners/peft/spec/spec.ts';
import { countVisual } from '../../runners/peft/spec/visual.ts';
import { loraRankFor, matchLoraTargets, nameMatches, targetableNames } from '../../runners/peft/spec/targets.ts';

export interface TrainableCount {
  /** Parameters with requires_grad after the method is applied (PEFT's "trainable params"). */
  trainable: number;
  /**
   * Parameters the method adds to the model (adapter weights, copies of modules_to_save). The rest of
   * `trainable` are base parameters it only unfreezes (LoRA bias="all", V2's norms).
   */
  added: number;
  /** Named parts, summing to `trainable`. */
  components: Record<string, number>;
  /** What the spec resolved to on this model (matched modules, layers, scaling...). */
  resolved: Record<string, unknown>;
}

export function countTrainable(spec: PeftSpec, arch: TextArch): TrainableCount {
  switch (spec.method) {
    case 'lora':
    case 'qlora':
      return countLora(spec, arch);
    case 'adapter-v1':
      return countAdapterV1(spec, arch);
    case 'adapter-v2':
      return countAdapterV2(spec, arch);
    case 'excitor':
      return countExcitor(spec, arch);
  }
}

// ---------------------------------------------------------------------------------------------------
// LoRA / QLoRA (huggingface/peft src/peft/tuners/lora, tuners_utils.py)

function countLora(spec: LoraSpec, arch: TextArch): TrainableCount {
  const all = moduleInstances(arch);
  const targeted = matchLoraTargets(spec, all);
  const components: Record<string, number> = {};
  const add = (name: string, n: number) => {
    if (n !== 0) components[name] = (components[name] ?? 0) + n;
  };
  let unfrozen = 0;
  for (const m of targeted) {
    const r = loraRankFor(spec, m.key);
    // lora.Linear: lora_A = nn.Linear(in, r, bias=False), lora_B = nn.Linear(r, out, bias=lora_bias).
    // lora.Embedding: lora_embedding_A (r, num_embeddings), lora_embedding_B (embedding_dim, r).
    add(`lora.${m.name}`, r * (m.inFeatures + m.outFeatures));
    if (spec.loraBias) {
      if (m.kind === 'embedding') throw new InputError('lora_bias is not supported on embed_tokens (PEFT lora.Embedding raises)');
      add('lora_bias', m.outFeatures);
    }
    // DoRA: lora_magnitude_vector = norm of (W + s·BA) per output row (dora.py get_weight_norm, dim=1):
    // out_features for Linear; embedding_dim for Embedding (DoraEmbeddingLayer transposes, fan_in_fan_out=True).
    if (spec.dora) add('dora.magnitude', m.outFeatures);
    if (spec.bias === 'lora_only' && m.kind === 'linear' && m.bias) {
      add('bias', m.outFeatures);
      unfrozen += m.outFeatures;
    }
  }
  if (spec.bias === 'all') {
    // _mark_only_adapters_as_trainable: every parameter named `*.bias` of the model.
    for (const m of all) {
      if (m.kind === 'linear' && m.bias && !m.tied) {
        add('bias', m.outFeatures);
        unfrozen += m.outFeatures;
      }
    }
  }
  // target_parameters (lora.ParamWrapper): a 3-D (E, d1, d2) parameter gets lora_A = Linear(d_in, r·E)
  // and lora_B = Linear(r·E, d_out): r·E·(d1 + d2). DoRA, lora_bias and dropout are rejected there.
  const params = expertParameters(arch);
  for (const target of spec.targetParameters) {
    const matches = params.filter((p) => nameMatches(p.key, target));
    if (matches.length === 0) {
      const names = params.length > 0 ? 'feed_forward.experts.gate_up_proj, feed_forward.experts.down_proj' : 'none (no routed experts in this model)';
      throw new InputError(`LoRA target_parameters ${target} not found in the model (targetable: ${names})`);
    }
    if (spec.dora) throw new InputError('LoRA target_parameters do not work with DoRA (PEFT lora.ParamWrapper raises)');
    if (spec.loraBias) throw new InputError('LoRA target_parameters do not work with lora_bias (PEFT lora.ParamWrapper raises)');
    if (spec.dropout > 0) throw new InputError('LoRA target_parameters need dropout=0 (PEFT lora.ParamWrapper raises)');
    for (const p of matches) {
      const [e, d1, d2] = p.shape;
      add(`lora.experts.${p.key.slice(p.key.lastIndexOf('.') + 1)}`, loraRankFor(spec, p.key) * e * (d1 + d2));
    }
  }
  // modules_to_save: ModulesToSaveWrapper keeps the frozen original and a trainable full copy.
  // _set_trainable matches with a plain `key.endswith(target_key)`.
  const savedKeys: string[] = [];
  for (const name of spec.modulesToSave) {
    const matches = all.filter((m) => m.key.endsWith(name));
    if (matches.length === 0) {
      throw new InputError(`modules_to_save ${name} not found in the model (modules: embed_tokens, lm_head, norm, input_layernorm, post_attention_layernorm, ${targetableNames(all)})`);
    }
    for (const m of matches) {
      if (savedKeys.includes(m.key)) continue;
      savedKeys.push(m.key);
      add(`modules_to_save.${m.name}`, m.params);
    }
  }
  const trainable = Object.values(components).reduce((s, n) => s + n, 0);
  const scaling = spec.rslora ? spec.alpha / Math.sqrt(spec.r) : spec.alpha / spec.r;
  const resolved: Record<string, unknown> = {
    method: spec.method,
    r: spec.r,
    alpha: spec.alpha,
    scaling,
    targets: [...new Set(targeted.map((m) => m.name))],
    wrappedModules: targeted.length,
    layers: new Set(targeted.map((m) => m.layer).filter((l) => l !== null)).size,
    dropout: spec.dropout,
    rslora: spec.rslora,
    dora: spec.dora,
    bias: spec.bias,
    modulesToSave: savedKeys.length,
  };
  if (spec.method === 'qlora') {
    // artidoro/qlora: LoRA on a 4-bit NF4 base with double quantization. Only LoRA weights train. Its
    // own `print_trainable_parameters(args, model)` does `if args.bits == 4: trainable_params /= 2`,
    // so the qlora.py log prints half of the true count.
    Object.assign(resolved, { base: 'nf4', doubleQuant: true, qloraPyLogs: trainable / 2 });
  }
  return { trainable, added: trainable - unfrozen, components, resolved };
}

// ---------------------------------------------------------------------------------------------------
// LLaMA-Adapter V1 (arXiv 2303.16199)

/** The top `n` decoder layers that have `self_attn` (PEFT AdaptionPromptModel: `parents[-adapter_layers:]`). */
function topSelfAttentionLayers(arch: TextArch, n: number, method: string): number[] {
  const layers = selfAttentionLayers(arch);
  if (n > layers.length) {
    // AdaptionPromptModel: "Config specifies more adapter layers '{n}' than the model has '{len}'."
    throw new InputError(`${method} layers=${n} is more than the model's ${layers.length} self-attention layers`);
  }
  return n === 0 ? [] : layers.slice(-n);
}

function countAdapterV1(spec: AdapterV1Spec, arch: TextArch): TrainableCount {
  const layers = topSelfAttentionLayers(arch, spec.layers, 'adapter-v1');
  const h = arch.hiddenSize;
  // Official (alpaca_finetuning_v1): adapter_query = nn.Embedding(adapter_len * adapter_layer, dim);
  // each adapted layer's Attention.gate (1, n_heads, 1, 1) is trainable ("gate" in name on
  // layers[-adapter_layer:]). The other layers' gates exist but stay frozen.
  // HF PEFT (adaption_prompt/layer.py): adaption_prompt (1, adapter_len, hidden_size) and
  // adaption_gate = torch.zeros(1) per adapted layer.
  const prompt = layers.length * spec.len * h;
  const gatePerLayer = spec.gate === 'head' ? arch.numHeads : 1;
  const gate = layers.length * gatePerLayer;
  return {
    trainable: prompt + gate,
    added: prompt + gate,
    components: { adaption_prompt: prompt, adaption_gate: gate },
    resolved: { method: spec.method, layers: layers.length, firstLayer: layers[0] ?? null, len: spec.len, gate: spec.gate, gatePerLayer, promptDim: h },
  };
}

// ---------------------------------------------------------------------------------------------------
// LLaMA-Adapter V2 (arXiv 2304.15010)

/**
 * What is trainable, from OpenGVLab/LLaMA-Adapter llama_adapter_v2_chat65b (llama/model.py and
 * models_llama_adapter.py, the released V2 language model "bias-scale-norm tuning"):
 * - per Linear of every decoder layer (wq wk wv wo w1 w2 w3 = q k v o gate down up): a bias
 *   `torch.zeros([out_features])` added after it and a scale `torch.ones([in_features])` applied
 *   to its input (`forward_linear_with_scale_and_bias`); the output head (`output`) gets none;
 * - `train_norm`: parameters with `"_norm." in name`, i.e. each layer's attention_norm and ffn_norm
 *   (RMSNorm weight, dim). The final `norm.weight` does not contain "_norm." and stays frozen;
 * - adaption prompts when adapter_layer > 0: `adapter_query = nn.Embedding(adapter_len *
 *   adapter_layer, dim)` and the per-head gate (1, n_heads, 1, 1) of the adapted layers (the others'
 *   gates are deleted). The released 65B model uses none (adapter_len = adapter_layer = 0).
 * The paper's "14M" (Fig. 5 caption: "our model is based on LLaMA-65B ... we only fine-tune 14M
 * parameters") is this set on LLaMA-65B: 80 × (bias 84,992 + scale 71,168 + norms 16,384) =
 * 13,803,520. On LLaMA-7B the same text-path set is 2,760,704, the paper's "0.04% of the entire
 * LLaMA" (§4.1), so the 14M cannot come from a 7B text path. Table 1's "14M" for the 7B visual
 * model counts "all the ... tuning parameters needed to convert the pretrained vision model and LLM":
 * the released 7B multi-modal code (llama_adapter_v2_multimodal7b) trains far more than 14M (its
 * visual branch alone, 8 ViT blocks of width 768 plus projections, is ~60M), so that row cannot be
 * reproduced from released code; only the text path is counted here.
 * Llama 4 routed experts (fused parameters, not Linear) get no bias/scale. mllama's cross-attention
 * decoder layers have no counterpart in the official code (its Transformer has only self-attention
 * blocks), so V2 on mllama tunes the self-attention layers and leaves the cross-attention layers
 * frozen, as runners/peft applies it.
 */
function countAdapterV2(spec: AdapterV2Spec, arch: TextArch): TrainableCount {
  const all = moduleInstances(arch);
  const cross = new Set(arch.crossAttentionLayers);
  const inLayers = all.filter((m) => m.layer !== null && !cross.has(m.layer));
  let bias = 0;
  let scale = 0;
  let norm = 0;
  for (const m of inLayers) {
    if (m.kind === 'linear') {
      if (spec.bias) bias += m.outFeatures;
      if (spec.scale) scale += m.inFeatures;
    } else if (m.kind === 'norm' && spec.norm) {
      norm += m.params;
    }
  }
  const layers = topSelfAttentionLayers(arch, spec.layers, 'adapter-v2');
  const prompt = layers.length * spec.len * arch.hiddenSize;
  const gate = layers.length * arch.numHeads;
  const components: Record<string, number> = {};
  for (const [k, v] of Object.entries({ bias, scale, norm, adaption_prompt: prompt, adaption_gate: gate })) {
    if (v !== 0) components[k] = v;
  }
  // The visual path (runners/peft/spec/visual.ts): every module of it trains; its image features are the
  // base's projector output, text hidden_size wide.
  if (spec.visual) Object.assign(components, countVisual(spec.visual, arch.hiddenSize, arch.hiddenSize, spec.len));
  const trainable = Object.values(components).reduce((s, n) => s + n, 0);
  return {
    trainable,
    // Norm weights exist in the base model: unfrozen, not added.
    added: trainable - norm,
    components,
    resolved: {
      method: spec.method, bias: spec.bias, scale: spec.scale, norm: spec.norm, promptLayers: layers.length, len: spec.len,
      linearModules: inLayers.filter((m) => m.kind === 'linear').length, ...(spec.visual ? { visual: spec.visual, visualFeatureDim: arch.hiddenSize } : {}),
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// LLaMA-Excitor (arXiv 2404.00913)

/**
 * Counted from the method description only: each of the top `layers` attention layers gets an
 * Excitor block with learnable prompts P_l ∈ R^{K×C} (K = len, C = hidden size) that reconstruct
 * the keys of an extra similarity term, a zero-initialised gate g_l (one scalar per layer), and, when
 * `rank` > 0, a low-rank bottleneck C→rank→C (2·C·rank weights, no bias) on the key path.
 * NOT VERIFIED against the paper: its implementation details (number of layers, prompt length, rank,
 * gate granularity) and its trainable-parameter figure could not be read from the stored material,
 * and no official code is public in it. Treat this count as the structure above, not the paper's.
 */
function countExcitor(spec: ExcitorSpec, arch: TextArch): TrainableCount {
  const layers = topSelfAttentionLayers(arch, spec.layers, 'excitor');
  const h = arch.hiddenSize;
  const prompt = layers.length * spec.len * h;
  const gate = layers.length;
  const lowRank = layers.length * 2 * h * spec.rank;
  const components: Record<string, number> = { excitor_prompt: prompt, excitor_gate: gate };
  if (lowRank > 0) components.excitor_low_rank = lowRank;
  const trainable = prompt + gate + lowRank;
  return {
    trainable,
    added: trainable,
    components,
    resolved: { method: spec.method, layers: layers.length, len: spec.len, rank: spec.rank, verified: false },
  };
}
