// `--peft file.pth[:layers=N]`: an official LLaMA-Adapter release checkpoint (OpenGVLab/LLaMA-Adapter),
// read into the same PeftSpec a spec string gives, so that `params`, `run` and the runners agree on
// what it is. The tensors are read by the restricted runners/torch/pth.ts reader (tensor data only).
//
// What the file does not store is the number of top layers that read adaption prompts
// (adapter_layer / query_layer): `:layers=N` gives it; without it, the release's own value is used
// (V1 alpaca_finetuning_v1: 30; V2 multi-modal llama_adapter_v2_multimodal7b: query_layer=31). A V2
// text-only checkpoint with prompts (chat65b layout) has no such default and needs `:layers=N`.
//
// V1 layout (alpaca_finetuning_v1/extract_adapter_from_checkpoint.py): `adapter_query.weight`
// [len * layers, dim] + `layers.N.attention.gate` [1, heads, 1, 1] on every layer.
// V2 layout (llama_adapter_v2_chat65b/llama/model.py names): plus `layers.N.attention.wX_bias` /
// `_scale`, `feed_forward.wX_*`, `attention_norm.weight`, `ffn_norm.weight`; with the visual path
// (llama_adapter_v2_multimodal7b/llama/llama_adapter.py) also `clip_proj.*`, `clip_proj_norm.*`,
// `visual_query.weight`, `visual_blocks.N.*`, `visual_proj.*`, `visual_proj_norm.*`.
import type { TextArch } from '../../arch.ts';
import { InputError } from '../../../results/errors.ts';
import { readPth, type PthTensor } from '../../torch/pth.ts';
import { selfAttentionLayers } from './modules.ts';
import { ADAPTER_V1_DEFAULTS, parsePeftSpec, type PeftSpec } from './spec.ts';
import { visualPathFromTensors } from './visual.ts';

/** llama_adapter_v2_multimodal7b `LLaMA_adapter(query_layer=31)`: the release's prompt layers. */
export const VISUAL_RELEASE_LAYERS = 31;

const OFFICIAL_ARG = /^(.+\.pth)(?::layers=(\d+))?$/;

export interface OfficialArg {
  path: string;
  /** `:layers=N`, or null to use the release's default. */
  layers: number | null;
}

/** The path and layer count of a `--peft file.pth[:layers=N]` argument, or null for any other argument. */
export function officialReleaseArg(arg: string): OfficialArg | null {
  const m = OFFICIAL_ARG.exec(arg.trim());
  if (!m) return null;
  const layers = m[2] === undefined ? null : Number(m[2]);
  if (layers === 0) throw new InputError(`--peft ${arg}: layers must be a positive integer (the adapter_layer the release was trained with)`);
  return { path: m[1]!, layers };
}

/** Whether a release checkpoint is LLaMA-Adapter V2 (bias / scale / norm or visual tensors) rather than V1. */
export function isOfficialAdapterV2(names: Iterable<string>): boolean {
  return [...names].some((name) => /_(bias|scale)$|_norm\.weight$|^visual_query\.weight$/.test(name));
}

export interface OfficialRelease {
  arg: string;
  path: string;
  spec: PeftSpec;
  tensors: Map<string, PthTensor>;
  /** The top layers that read prompts (0: none). */
  layers: number;
}

/** Reads an official release `.pth` and the spec it stands for. */
export function readOfficialRelease(arg: string): OfficialRelease {
  const parsed = officialReleaseArg(arg);
  if (!parsed) throw new Error(`readOfficialRelease: ${arg} is not a .pth argument`);
  const tensors = readPth(parsed.path);
  return { arg, path: parsed.path, tensors, ...officialReleaseSpec(tensors, parsed.path, parsed.layers, arg) };
}

/**
 * The spec of a release's tensors; `layers` is the adapter_layer given by the user (null: the
 * release's default). `source` names the argument in labels.
 */
export function officialReleaseSpec(tensors: ReadonlyMap<string, { shape: number[] }>, path: string, given: number | null, source: string): { spec: PeftSpec; layers: number } {
  const parsed = { layers: given };
  const names = [...tensors.keys()];
  const query = tensors.get('adapter_query.weight');
  if (query && query.shape.length !== 2) throw new InputError(`${path}: adapter_query.weight has shape [${query.shape.join(', ')}], expected [len * layers, dim]`);
  const rows = query ? query.shape[0]! : 0;
  const lenFor = (layers: number): number => {
    if (rows % layers !== 0) throw new InputError(`${path}: adapter_query.weight has ${rows} rows, not a multiple of adapter_layer ${layers}; pass the adapter's layer count as ${path}:layers=N`);
    return rows / layers;
  };
  const src = { source };
  if (!isOfficialAdapterV2(names)) {
    if (!query) throw new InputError(`${path}: no "adapter_query.weight"; not an official LLaMA-Adapter V1 checkpoint (expected adapter_query.weight and layers.N.attention.gate)`);
    const layers = parsed.layers ?? ADAPTER_V1_DEFAULTS.layers;
    return { layers, spec: { ...parsePeftSpec(`adapter-v1:layers=${layers},len=${lenFor(layers)}`), ...src } };
  }
  const visual = visualPathFromTensors(tensors, path);
  let layers = 0;
  if (query) {
    layers = parsed.layers ?? (visual ? VISUAL_RELEASE_LAYERS : 0);
    if (layers === 0) throw new InputError(`${path}: has adaption prompts (adapter_query.weight) but their layer count is not stored; pass adapter_layer as ${path}:layers=N`);
  } else if (visual) {
    throw new InputError(`${path}: has a visual path (visual_query.weight) but no adapter_query.weight for it to add to`);
  }
  const has = (re: RegExp) => names.some((name) => re.test(name));
  const len = layers > 0 ? lenFor(layers) : 0;
  // The LLaMA layers' own norms (attention_norm, ffn_norm), not the visual path's clip_proj_norm etc.
  const spec = parsePeftSpec(`adapter-v2:layers=${layers},len=${len},bias=${has(/_bias$/)},scale=${has(/_scale$/)},norm=${has(/^layers\.\d+\.\w+_norm\.weight$/)}`);
  if (visual && visual.queryLen !== len) throw new InputError(`${path}: visual_query.weight has ${visual.queryLen} rows but each layer's adaption prompt has ${len} (query_len must be equal)`);
  return { layers, spec: spec.method === 'adapter-v2' && visual ? { ...spec, visual: visual.dims, ...src } : { ...spec, ...src } };
}

/**
 * Checks a release against a model's shapes (an adapter for another base model fails here, naming
 * the tensor): adapter_query's width, the gates' head count and layer indices, the prompt layer count.
 */
export function checkOfficialRelease(release: OfficialRelease, arch: TextArch): void {
  const { path, tensors } = release;
  const query = tensors.get('adapter_query.weight');
  if (query && query.shape[1] !== arch.hiddenSize) {
    throw new InputError(`${path}: adapter_query.weight has shape [${query.shape.join(', ')}], expected [len * layers, ${arch.hiddenSize}] (adapter made for a model with another hidden size)`);
  }
  const selfLayers = selfAttentionLayers(arch);
  if (release.layers > selfLayers.length) {
    throw new InputError(`${path}: adapter_layer ${release.layers} does not fit this model's ${selfLayers.length} self-attention layers; pass the adapter's layer count as ${path}:layers=N`);
  }
  for (const [name, t] of tensors) {
    const gate = /^layers\.(\d+)\.attention\.gate$/.exec(name);
    if (!gate) continue;
    if (Number(gate[1]) >= arch.numLayers) throw new InputError(`${path}: "${name}" names layer ${gate[1]}, but the model has ${arch.numLayers} decoder layers (adapter made for another base model)`);
    if (t.shape.join(',') !== `1,${arch.numHeads},1,1`) throw new InputError(`${path}: "${name}" has shape [${t.shape.join(', ')}], expected [1, ${arch.numHeads}, 1, 1] (adapter made for a model with another head count)`);
  }
}
