// LLaMA-Adapter V2 (Gao et al. 2023, arXiv 2304.15010), text path, as the official release computes it
// (OpenGVLab/LLaMA-Adapter llama_adapter_v2_chat65b/llama/model.py):
// - every Linear of every decoder layer runs as `forward_linear_with_scale_and_bias`:
//   module(x * wX_scale) + wX_bias, scale ones([in]) and bias zeros([out]) at init;
// - the RMSNorm weights of each layer (attention_norm, ffn_norm) are trained;
// - with adapter_layer > 0, V1-style adaption prompts (`adapter_query`, [len * layers, dim]) whose
//   keys/values go through the same scaled/biased wk/wv, gated per head by tanh(gate) and added to the
//   heads before wo.
// There is no HF PEFT format for V2; tensors are named after the HF modules they modify
// (`<module>.adapter_v2_scale` / `.adapter_v2_bias`, the norm's `.weight`, `adapter_query.weight`,
// `model.layers.N.self_attn.adapter_v2_gate`), and `officialAdapterV2Name` maps the release's names.
import type { AdapterV2Spec } from './spec/index.ts';
import { InputError } from '../../results/errors.ts';
import type { ReferenceModel } from '../reference-weights.ts';
import { seededNormal, seededUniform } from '../tiny.ts';
import { adaptedLayers } from './adaption-prompt.ts';
import { extendPeft, type AdaptionPrompt } from './branch.ts';
import type { AdapterTensors, LoraMode, NamedTensor } from './lora.ts';
import { cloneModelShallow, referenceModules, type ModuleSlot } from './modules.ts';
import { streamSeed } from './seed.ts';
import { randomVisualTensors, readVisualAdapter } from './visual.ts';

const OFFICIAL_LINEARS: Record<string, string> = {
  'attention.wq': 'self_attn.q_proj', 'attention.wk': 'self_attn.k_proj', 'attention.wv': 'self_attn.v_proj', 'attention.wo': 'self_attn.o_proj',
  'feed_forward.w1': 'mlp.gate_proj', 'feed_forward.w2': 'mlp.down_proj', 'feed_forward.w3': 'mlp.up_proj',
};

/** The name this module uses for an official (LLaMA 1 layout) V2 tensor, or null if it has none. */
export function officialAdapterV2Name(name: string): string | null {
  if (name === 'adapter_query.weight') return name;
  // The visual path keeps its official names (llama_adapter_v2_multimodal7b/llama/llama_adapter.py).
  if (/^(clip_proj|clip_proj_norm|visual_proj|visual_proj_norm)\.(weight|bias)$|^visual_query\.weight$|^visual_blocks\.\d+\.(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.(weight|bias)$/.test(name)) return name;
  const m = /^layers\.(\d+)\.(attention\.w[qkvo]|feed_forward\.w[123])_(bias|scale)$/.exec(name);
  if (m) return `model.layers.${m[1]}.${OFFICIAL_LINEARS[m[2]!]}.adapter_v2_${m[3]}`;
  const n = /^layers\.(\d+)\.(attention_norm|ffn_norm)\.weight$/.exec(name);
  if (n) return `model.layers.${n[1]}.${n[2] === 'attention_norm' ? 'input_layernorm' : 'post_attention_layernorm'}.weight`;
  const g = /^layers\.(\d+)\.attention\.gate$/.exec(name);
  return g ? `model.layers.${g[1]}.self_attn.adapter_v2_gate` : null;
}

/**
 * The Linear modules of the decoder layers the official code has: on mllama the self-attention
 * layers only (the cross-attention layers, absent from LLaMA-Adapter, stay frozen; harness/peft counts
 * the same set).
 */
function layerLinears(model: ReferenceModel): ModuleSlot[] {
  return [...referenceModules(model).values()].filter((s) => s.kind === 'linear' && !s.cross && s.key.startsWith('model.layers.'));
}

function layerNorms(model: ReferenceModel): ModuleSlot[] {
  return [...referenceModules(model).values()].filter((s) => s.kind === 'norm' && s.key.startsWith('model.layers.'));
}

function promptLayers(model: ReferenceModel, spec: AdapterV2Spec): number[] {
  return adaptedLayers(model, spec.layers, 'adapter-v2');
}

/** V2 tensors at the release's init (`init: 'zero'`: the identity) or drawn around it (`'random'`). */
export function randomAdapterV2Tensors(spec: AdapterV2Spec, model: ReferenceModel, seed: number, init: 'random' | 'zero' = 'random'): NamedTensor[] {
  const out: NamedTensor[] = [];
  const noise = (name: string, n: number, std: number) => (init === 'zero' ? new Float32Array(n) : seededNormal(streamSeed(seed, name), n, std));
  for (const s of layerLinears(model)) {
    if (spec.bias) out.push({ name: `${s.key}.adapter_v2_bias`, shape: [s.out], data: noise(`${s.key}.bias`, s.out, 0.02) });
    if (spec.scale) {
      const scale = noise(`${s.key}.scale`, s.inp, 0.1).map((x) => 1 + x);
      out.push({ name: `${s.key}.adapter_v2_scale`, shape: [s.inp], data: scale });
    }
  }
  if (spec.norm) {
    for (const s of layerNorms(model)) {
      const d = noise(`${s.key}.weight`, s.out, 0.1);
      out.push({ name: `${s.key}.weight`, shape: [s.out], data: Float32Array.from(s.get(), (x, i) => x + d[i]!) });
    }
  }
  const layers = promptLayers(model, spec);
  if (layers.length > 0) {
    const h = model.text.hiddenSize;
    // nn.Embedding init: N(0, 1).
    out.push({ name: 'adapter_query.weight', shape: [spec.len * layers.length, h], data: seededNormal(streamSeed(seed, 'adapter_query'), spec.len * layers.length * h, 1) });
    for (const layer of layers) {
      const uniform = seededUniform(streamSeed(seed, `gate.${layer}`));
      const heads = model.text.numHeads;
      const gate = init === 'zero' ? new Float32Array(heads) : Float32Array.from({ length: heads }, () => 2 * uniform() - 1);
      out.push({ name: `model.layers.${layer}.self_attn.adapter_v2_gate`, shape: [1, heads, 1, 1], data: gate });
    }
  }
  // The visual path (official names); its image features are the base's projector output, hidden wide.
  if (spec.visual) out.push(...randomVisualTensors(spec.visual, model.text.hiddenSize, model.text.hiddenSize, spec.len, streamSeed(seed, 'visual')));
  return out;
}

function read(tensors: AdapterTensors, name: string, shape: readonly number[]): Float32Array {
  const info = tensors.info(name);
  if (!info) throw new InputError(`${tensors.path}: missing adapter-v2 tensor "${name}" (expected [${shape.join(', ')}])`);
  if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
    throw new InputError(`${tensors.path}: adapter-v2 tensor "${name}" has shape [${info.shape.join(', ')}], expected [${shape.join(', ')}] (adapter made for another base model?)`);
  }
  return tensors.readFloat32(name);
}

/**
 * Applies LLaMA-Adapter V2 to a copy of `model`. 'merged' folds each input scale into its weight
 * (W diag(scale), float64 in the PEFT state); 'unmerged' scales the input at run time.
 */
export function applyAdapterV2(model: ReferenceModel, spec: AdapterV2Spec, tensors: AdapterTensors, mode: LoraMode): ReferenceModel {
  const out = cloneModelShallow(model);
  const peft = extendPeft(model.peft, `adapter-v2 ${mode}`);
  const expected = new Set<string>();
  const take = (name: string, shape: readonly number[]) => {
    expected.add(name);
    return read(tensors, name, shape);
  };
  for (const s of layerLinears(out)) {
    if (spec.bias) peft.extraBias.set(s.key, take(`${s.key}.adapter_v2_bias`, [s.out]));
    if (!spec.scale) continue;
    const scale = take(`${s.key}.adapter_v2_scale`, [s.inp]);
    if (mode === 'unmerged') {
      peft.inputScale.set(s.key, scale);
      continue;
    }
    const w = peft.merged.get(s.key) ?? s.get();
    const merged = Float64Array.from(w, (x, j) => x * scale[j % s.inp]!);
    peft.merged.set(s.key, merged);
    s.set(Float32Array.from(merged));
  }
  if (spec.norm) for (const s of layerNorms(out)) s.set(take(`${s.key}.weight`, [s.out]));
  const layers = promptLayers(out, spec);
  if (layers.length > 0) {
    const h = out.text.hiddenSize;
    const query = take('adapter_query.weight', [spec.len * layers.length, h]);
    layers.forEach((layer, i) => {
      const gate = take(`model.layers.${layer}.self_attn.adapter_v2_gate`, [1, out.text.numHeads, 1, 1]);
      const prompt = query.subarray(i * spec.len * h, (i + 1) * spec.len * h);
      peft.adaptionPrompts.set(layer, { prompt, len: spec.len, gate, gateTanh: true, beforeOProj: true } satisfies AdaptionPrompt);
    });
    // Per image, the visual query is added to these prompts (runners/peft/visual.ts withVisualQuery).
    if (spec.visual) peft.visual = readVisualAdapter(tensors, spec.visual, out, spec.len, layers, expected);
  }
  const extra = tensors.names().find((n) => !expected.has(n));
  if (extra !== undefined) throw new InputError(`${tensors.path}: adapter-v2 tensor "${extra}" matches nothing in this model under the spec (adapter made for another base model?)`);
  out.peft = peft;
  return out;
}
