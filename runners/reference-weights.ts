// Loads a checkpoint's weights for the reference forward, by HF tensor name, checking every shape
// against config.json (a mismatch names the tensor). Weights stay Float32Array as stored.
import type { ModelArch, TextArch } from '../harness/arch.ts';
import { InputError } from '../results/errors.ts';
import { layerPrefix, textTensorSpecs } from './hf/tensor-names.ts';
import { CheckpointWeights } from './hf/weights.ts';
import type { ReferencePeft } from './peft/branch.ts';

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
  if (arch.modelType === 'mllama') {
    throw new InputError('mllama (LLaMA 3.2 Vision) checkpoints are not supported by the reference forward yet; use a text model');
  }
  const shapes = new Map(textTensorSpecs(arch).map((s) => [s.name, s.shape]));
  const read = (name: string): Float32Array => {
    const shape = shapes.get(name);
    if (!shape) throw new Error(`reference: no spec for tensor ${name}`);
    return source.readFloat32(name, { expectShape: shape });
  };
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
