// Trainable parameters of a PEFT method on a LLaMA-family text model, counted the way the method's
// reference code builds its parameters (HF PEFT for LoRA/QLoRA/AdaptionPrompt, OpenGVLab/LLaMA-Adapter for
// LLaMA-Adapter V1/V2), so that `trainable` equals what `print_trainable_parameters()` (or the
// official training script) reports. Shapes come from modules.ts / params/text.ts, never from a model.

import type { TextArch } from '../../runners/arch.ts';
import { InputError } from '../errors.ts';
import { expertParameters, moduleInstances, selfAttentionLayers, type ModuleInstance } from './modules.ts';
import type { AdapterV1Spec, AdapterV2Spec, ExcitorSpec, LoraSpec, PeftSpec } from './spec.ts';
import { countVisual } from './visual.ts';

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

/** Compiles a regex taken from a spec or adapter_config.json, as an InputError naming the field if invalid. */
function compile(source: string, pattern: string, what: string): RegExp {
  try {
    return new RegExp(source);
  } catch (error) {
    throw new InputError(`bad ${what} regex "${pattern}": ${(error as Error).message}`);
  }
}

/** Python `re.fullmatch(pattern, key)`. */
function fullMatch(pattern: string, key: string, what: string): boolean {
  return compile(`^(?:${pattern})$`, pattern, what).test(key);
}

/** PEFT's name match of a list entry: the full key, or a dotted suffix of it (`key.endswith(f".{target}")`). */
function nameMatches(key: string, target: string): boolean {
  return key === target || key.endsWith(`.${target}`);
}

/**
 * The decoder-layer index PEFT reads for `layers_to_transform`: `re.match(r".*?\.[^.]*\.(\d+)\.", key)`,
 * or `rf".*?\.{pattern}\.(\d+)\."` per `layers_pattern` (check_target_module_exists).
 */
function layerIndexOf(key: string, patterns: string[] | null): number | null {
  const res = patterns === null ? [/^.*?\.[^.]*\.(\d+)\./] : patterns.map((p) => compile(`^.*?\\.${p}\\.(\\d+)\\.`, p, 'layers_pattern'));
  for (const re of res) {
    const m = re.exec(key);
    if (m) return Number(m[1]);
  }
  return null;
}

/** `get_pattern_key`: the first rank_pattern key with `re.match(rf"(.*\.)?({key})$", module_key)`. */
function rankFor(spec: LoraSpec, key: string): number {
  for (const [pattern, r] of Object.entries(spec.rankPattern)) {
    if (compile(`^(.*\\.)?(${pattern})$`, pattern, 'rank_pattern').test(key)) return r;
  }
  return spec.r;
}

function targetableNames(all: ModuleInstance[]): string {
  return [...new Set(all.filter((m) => m.kind !== 'norm').map((m) => m.name))].join(', ');
}

function resolveTargets(spec: LoraSpec, all: ModuleInstance[]): ModuleInstance[] {
  const t = spec.targets;
  if ((t === 'all-linear' || !Array.isArray(t)) && (spec.layersToTransform !== null || spec.layersPattern !== null)) {
    // LoraConfig.__post_init__: "`layers_to_transform` cannot be used when `target_modules` is a str."
    throw new InputError('LoRA layers_to_transform/layers_pattern cannot be combined with targets=all-linear or a regex (PEFT LoraConfig rejects it)');
  }
  if (spec.layersPattern !== null && spec.layersToTransform === null) {
    throw new InputError('LoRA layers_pattern needs layers_to_transform (PEFT LoraConfig rejects it)');
  }
  let targeted: ModuleInstance[];
  if (t === 'all-linear') {
    // INCLUDE_LINEAR_LAYERS_SHORTHAND: every nn.Linear (isinstance, so Llama4Router, an nn.Linear
    // subclass, is in) minus the output embedding `get_output_embeddings()` = lm_head
    // (_maybe_include_all_linear_layers, after artidoro/qlora's find_all_linear_names). The embedding
    // is not Linear and stays out. Llama 4's routed experts are fused nn.Parameters, not Linear
    // modules: all-linear never reaches them; PEFT adapts them only through
    // `target_parameters=['feed_forward.experts.gate_up_proj', 'feed_forward.experts.down_proj']`.
    targeted = all.filter((m) => m.kind === 'linear' && m.group !== 'lm_head');
  } else if (Array.isArray(t)) {
    const missing: string[] = [];
    const hit = new Set<ModuleInstance>();
    for (const target of t) {
      const matches = all.filter((m) => nameMatches(m.key, target));
      const norm = matches.find((m) => m.kind === 'norm');
      if (norm) {
        throw new InputError(`LoRA target "${target}" is an RMSNorm (${norm.key}); LoRA wraps Linear and Embedding modules only (targetable: ${targetableNames(all)})`);
      }
      if (matches.length === 0) missing.push(target);
      for (const m of matches) hit.add(m);
    }
    if (missing.length > 0) {
      // PEFT raises only when no target matches at all ("Target modules {...} not found in the base
      // model"); a name that matches nothing is almost always a typo, so each one is reported here.
      throw new InputError(`LoRA target modules ${missing.join(', ')} not found in the model (targetable: ${targetableNames(all)})`);
    }
    targeted = [...hit];
    if (spec.layersToTransform !== null) {
      const layers = new Set(spec.layersToTransform);
      targeted = targeted.filter((m) => {
        const i = layerIndexOf(m.key, spec.layersPattern);
        return i !== null && layers.has(i);
      });
    }
  } else {
    targeted = all.filter((m) => fullMatch(t.regex, m.key, 'target_modules'));
    const norm = targeted.find((m) => m.kind === 'norm');
    if (norm) throw new InputError(`LoRA target regex "${t.regex}" matches RMSNorm ${norm.key}; LoRA wraps Linear and Embedding modules only`);
    if (targeted.length === 0) throw new InputError(`LoRA target modules regex "${t.regex}" not found in the model (module keys look like model.layers.0.self_attn.q_proj)`);
  }
  const ex = spec.excludeModules;
  if (ex !== null) {
    targeted = targeted.filter((m) => !(Array.isArray(ex) ? ex.some((x) => nameMatches(m.key, x)) : fullMatch(ex.regex, m.key, 'exclude_modules')));
  }
  // check_target_module_exists: a module matched by modules_to_save is never also LoRA-wrapped.
  if (spec.modulesToSave.length > 0) {
    const saved = spec.modulesToSave.map((s) => compile(`^(|.*\\.)${s}($|\\..*)`, s, 'modules_to_save'));
    targeted = targeted.filter((m) => !saved.some((re) => re.test(m.key)));
  }
  if (targeted.length === 0 && spec.targetParameters.length === 0) {
    throw new InputError('LoRA targets no module after layers_to_transform / exclude_modules / modules_to_save (PEFT: "No modules were targeted for adaptation")');
  }
  return targeted;
}

/** The module instances a LoRA spec wraps on `arch` (PEFT's target matching), for runners/peft. */
export function resolveLoraTargets(spec: LoraSpec, arch: TextArch): ModuleInstance[] {
  return resolveTargets(spec, moduleInstances(arch));
}

/** The rank of module `key` under the spec's `rank_pattern` (PEFT get_pattern_key), else `r`. */
export function loraRankFor(spec: LoraSpec, key: string): number {
  return rankFor(spec, key);
}

function countLora(spec: LoraSpec, arch: TextArch): TrainableCount {
  const all = moduleInstances(arch);
  const targeted = resolveTargets(spec, all);
  const components: Record<string, number> = {};
  const add = (name: string, n: number) => {
    if (n !== 0) components[name] = (components[name] ?? 0) + n;
  };
  let unfrozen = 0;
  for (const m of targeted) {
    const r = rankFor(spec, m.key);
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
      add(`lora.experts.${p.key.slice(p.key.lastIndexOf('.') + 1)}`, rankFor(spec, p.key) * e * (d1 + d2));
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
  // The visual path (harness/peft/visual.ts): every module of it trains; its image features are the
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
