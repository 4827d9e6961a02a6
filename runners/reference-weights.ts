// Loads a checkpoint's weights for the reference forward, by HF tensor name, checking every shape
// against config.json (a mismatch names the tensor). Weights stay Float32Array as stored.
import type { ModelArch, TextArch } from './arch.ts';
import { layerPrefix, textTensorSpecs } from './hf/tensor-names.ts';
import { CheckpointWeights } from './hf/weights.ts';
import type { ReferencePeft } from './peft/branch.ts';
import { mllamaTensorSpecs } from './tiny-vision.ts';
import type { CrossAttentionArch } from './vision/mllama-cross-attention.ts';
import type { TensorGetter } from './vision/mllama-reference.ts';

/** Anything that reads a float tensor by name with a shape check (CheckpointWeights, a Map in tests). */
export interface TensorSource {
  has(name: string): boolean;
  readFloat32(name: string, options?: { expectShape?: readonly number[] }): Float32Array;
}

export interface DenseMlpWeights {
  gate: Float32Array;
  up: Float32Array;
  down: Float32Array;
  gateBias: Float32Array | null;
  upBias: Float32Array | null;
  downBias: Float32Array | null;
  inter: number;
}

export interface MoeWeights {
  /** [E, H] */
  router: Float32Array;
  /** [E, H, 2I]: for each expert, H rows of (gate | up) columns. */
  gateUp: Float32Array;
  /** [E, I, H] */
  down: Float32Array;
  shared: DenseMlpWeights;
}

export interface LayerWeights {
  inputNorm: Float32Array;
  postAttentionNorm: Float32Array;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  o: Float32Array;
  qBias: Float32Array | null;
  kBias: Float32Array | null;
  vBias: Float32Array | null;
  oBias: Float32Array | null;
  mlp: DenseMlpWeights | null;
  moe: MoeWeights | null;
}

/** Llama 4 attention temperature tuning (Llama4TextConfig defaults: true, 8192, 0.1). */
export interface TemperatureTuning {
  floorScale: number;
  attnScale: number;
}

export interface ReferenceModel {
  arch: ModelArch;
  text: TextArch;
  temperatureTuning: TemperatureTuning | null;
  embed: Float32Array;
  layers: LayerWeights[];
  norm: Float32Array;
  /** lm_head, or embed_tokens when the embeddings are tied. */
  lmHead: Float32Array;
  /**
   * Vision hook (issue 10), mllama only: the text model's MllamaCrossAttentionDecoderLayers. HF
   * counts them among num_hidden_layers, so `layers` then holds only the self-attention layers, in
   * order, and the forward interleaves these at their indices. `get` reads their tensors by HF name.
   */
  crossAttention?: { layers: readonly number[]; arch: CrossAttentionArch; get: TensorGetter };
  /** PEFT hook: what runners/peft applied (LoRA branches or float64 merged weights, adaption prompts); absent for the base model. */
  peft?: ReferencePeft;
}

/** Llama 4 fields that TextArch does not carry, read from the raw (text) config. */
export function temperatureTuningFrom(arch: ModelArch, rawConfig: Record<string, unknown>): TemperatureTuning | null {
  if (arch.modelType !== 'llama4') return null;
  const text = (rawConfig.model_type === 'llama4' ? rawConfig.text_config : rawConfig) as Record<string, unknown>;
  if (text.attn_temperature_tuning === false) return null;
  const num = (v: unknown, fallback: number) => (typeof v === 'number' ? v : fallback);
  return { floorScale: num(text.floor_scale, 8192), attnScale: num(text.attn_scale, 0.1) };
}

export function loadReferenceModel(arch: ModelArch, rawConfig: Record<string, unknown>, source: TensorSource): ReferenceModel {
  // Vision hook (issue 10): an mllama checkpoint stores its text model under `language_model.`
  // (MllamaForConditionalGeneration), with names and shapes otherwise as a LLaMA text model's.
  const mllama = arch.modelType === 'mllama';
  // Vision hook (issue 10): Llama4ForConditionalGeneration (a llama4 config with vision_config)
  // stores its Llama4ForCausalLM under `language_model.` too, names otherwise unchanged.
  const llama4Vision = arch.modelType === 'llama4' && arch.vision !== null;
  const prefix = mllama || llama4Vision ? 'language_model.' : '';
  const specs = mllama
    ? mllamaTensorSpecs(arch).filter((s) => s.name.startsWith(prefix)).map((s) => ({ ...s, name: s.name.slice(prefix.length) }))
    : textTensorSpecs(arch);
  const shapes = new Map(specs.map((s) => [s.name, s.shape]));
  const read = (name: string): Float32Array => {
    const shape = shapes.get(name);
    if (!shape) throw new Error(`reference: no spec for tensor ${name}`);
    return source.readFloat32(prefix + name, { expectShape: shape });
  };
  const crossTensors = new Map<string, Float32Array>();
  const maybe = (name: string): Float32Array | null => (shapes.has(name) ? read(name) : null);
  const text = arch.text;
  const dense = (prefix: string, inter: number): DenseMlpWeights => ({
    gate: read(`${prefix}.gate_proj.weight`),
    up: read(`${prefix}.up_proj.weight`),
    down: read(`${prefix}.down_proj.weight`),
    gateBias: maybe(`${prefix}.gate_proj.bias`),
    upBias: maybe(`${prefix}.up_proj.bias`),
    downBias: maybe(`${prefix}.down_proj.bias`),
    inter,
  });
  const layers: LayerWeights[] = [];
  for (let i = 0; i < text.numLayers; i++) {
    const p = layerPrefix(i);
    if (text.crossAttentionLayers.includes(i)) {
      // Vision hook: read the cross-attention layer whole, under its full HF names.
      for (const s of specs) if (s.name.startsWith(`${p}.`)) crossTensors.set(prefix + s.name, read(s.name));
      continue;
    }
    const attn = `${p}.self_attn`;
    let mlp: DenseMlpWeights | null = null;
    let moe: MoeWeights | null = null;
    if (arch.modelType === 'llama4') {
      if (text.moe!.moeLayers.includes(i)) {
        moe = {
          router: read(`${p}.feed_forward.router.weight`),
          gateUp: read(`${p}.feed_forward.experts.gate_up_proj`),
          down: read(`${p}.feed_forward.experts.down_proj`),
          shared: dense(`${p}.feed_forward.shared_expert`, text.moe!.expertIntermediateSize),
        };
      } else {
        mlp = dense(`${p}.feed_forward`, text.intermediateSize);
      }
    } else {
      mlp = dense(`${p}.mlp`, text.intermediateSize);
    }
    layers.push({
      inputNorm: read(`${p}.input_layernorm.weight`),
      postAttentionNorm: read(`${p}.post_attention_layernorm.weight`),
      q: read(`${attn}.q_proj.weight`),
      k: read(`${attn}.k_proj.weight`),
      v: read(`${attn}.v_proj.weight`),
      o: read(`${attn}.o_proj.weight`),
      qBias: maybe(`${attn}.q_proj.bias`),
      kBias: maybe(`${attn}.k_proj.bias`),
      vBias: maybe(`${attn}.v_proj.bias`),
      oBias: maybe(`${attn}.o_proj.bias`),
      mlp,
      moe,
    });
  }
  const embed = read('model.embed_tokens.weight');
  // Tied models (3.2 1B/3B): HF ties lm_head to embed_tokens, so even a stored lm_head.weight is
  // ignored and the embedding matrix is the output projection.
  const lmHead = text.tieWordEmbeddings ? embed : read('lm_head.weight');
  return {
    arch,
    text,
    temperatureTuning: temperatureTuningFrom(arch, rawConfig),
    embed,
    layers,
    norm: read('model.norm.weight'),
    lmHead,
    ...(mllama ? { crossAttention: { layers: [...text.crossAttentionLayers], arch: crossAttentionArch(text), get: getterOf(crossTensors) } } : {}),
  };
}

/** The cross-attention layer shapes of an mllama text config. */
export function crossAttentionArch(t: TextArch): CrossAttentionArch {
  return { hiddenSize: t.hiddenSize, numHeads: t.numHeads, numKvHeads: t.numKvHeads, intermediateSize: t.intermediateSize, rmsNormEps: t.rmsNormEps };
}

function getterOf(tensors: ReadonlyMap<string, Float32Array>): TensorGetter {
  return (name) => {
    const t = tensors.get(name);
    if (!t) throw new Error(`reference: no cross-attention tensor ${name}`);
    return t;
  };
}

/** Loads the reference model of an opened checkpoint (weights are read once, then closed). */
export function loadReferenceFromCheckpoint(checkpoint: { dir: string; arch: ModelArch; config: Record<string, unknown> }): ReferenceModel {
  const weights = CheckpointWeights.open(checkpoint.dir);
  try {
    return loadReferenceModel(checkpoint.arch, checkpoint.config, weights);
  } finally {
    weights.close();
  }
}
