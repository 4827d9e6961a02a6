// LLaMA-Adapter V2's visual path (OpenGVLab/LLaMA-Adapter llama_adapter_v2_multimodal7b/llama/
// llama_adapter.py, `LLaMA_adapter.__init__` / `forward_visual`): image features -> clip_proj ->
// clip_proj_norm; `visual_query` rows prepended; `visual_blocks` (timm 0.3.2 `Block(v_embed_dim,
// v_num_heads, v_mlp_ratio, qkv_bias=True)`); the first query_len rows -> visual_proj ->
// visual_proj_norm; the result is added to every adapted layer's adaption prompt.
//
// On a vision-capable base the base's own encoder stands in for CLIP: the features are mllama's
// `multi_modal_projector` output (the cross-attention states, text hidden_size wide, one row per patch
// of the image's real tiles, class tokens included), as CLIP's `clip_encode_image` output is the
// encoder's projected output over all tokens. So clip_dim = the text model's hidden_size.
//
// This file holds the module shapes (official names) and the trainable count; runners/peft/visual.ts
// runs the forward.
import { InputError } from '../../../results/errors.ts';

/** `LLaMA_adapter(v_embed_dim=768, v_depth=8, v_num_heads=16, v_mlp_ratio=4.0)` defaults of the release. */
export const VISUAL_DEFAULTS = { dim: 768, depth: 8, heads: 16, mlpRatio: 4 } as const;

/** The visual path's sizes. */
export interface VisualDims {
  /** v_embed_dim */
  dim: number;
  /** v_depth: number of visual_blocks */
  depth: number;
  /** v_num_heads (not stored in a checkpoint) */
  heads: number;
  /** timm Mlp hidden features: int(v_embed_dim * v_mlp_ratio) */
  mlpHidden: number;
}

/** Every parameter of the visual path under its official name, with its shape. */
export function visualParameterShapes(dims: VisualDims, featureDim: number, hidden: number, queryLen: number): [string, number[]][] {
  const v = dims.dim;
  const m = dims.mlpHidden;
  const out: [string, number[]][] = [
    // nn.Linear(clip_dim, v_embed_dim), nn.LayerNorm(v_embed_dim)
    ['clip_proj.weight', [v, featureDim]], ['clip_proj.bias', [v]],
    ['clip_proj_norm.weight', [v]], ['clip_proj_norm.bias', [v]],
    // nn.Embedding(query_len, v_embed_dim)
    ['visual_query.weight', [queryLen, v]],
  ];
  for (let i = 0; i < dims.depth; i++) {
    const p = `visual_blocks.${i}`;
    // timm Block: norm1, attn.qkv Linear(dim, 3 dim, bias=qkv_bias), attn.proj Linear(dim, dim), norm2,
    // mlp.fc1 Linear(dim, hidden), mlp.fc2 Linear(hidden, dim).
    out.push(
      [`${p}.norm1.weight`, [v]], [`${p}.norm1.bias`, [v]],
      [`${p}.attn.qkv.weight`, [3 * v, v]], [`${p}.attn.qkv.bias`, [3 * v]],
      [`${p}.attn.proj.weight`, [v, v]], [`${p}.attn.proj.bias`, [v]],
      [`${p}.norm2.weight`, [v]], [`${p}.norm2.bias`, [v]],
      [`${p}.mlp.fc1.weight`, [m, v]], [`${p}.mlp.fc1.bias`, [m]],
      [`${p}.mlp.fc2.weight`, [v, m]], [`${p}.mlp.fc2.bias`, [v]],
    );
  }
  // nn.Linear(v_embed_dim, dim), nn.LayerNorm(dim)
  out.push(['visual_proj.weight', [hidden, v]], ['visual_proj.bias', [hidden]], ['visual_proj_norm.weight', [hidden]], ['visual_proj_norm.bias', [hidden]]);
  return out;
}

/** Trainable parameters of the visual path by part (all of it trains: the release's pretrain phase list). */
export function countVisual(dims: VisualDims, featureDim: number, hidden: number, queryLen: number): Record<string, number> {
  const parts: Record<string, number> = {};
  for (const [name, shape] of visualParameterShapes(dims, featureDim, hidden, queryLen)) {
    const part = `visual.${name.startsWith('visual_blocks.') ? 'visual_blocks' : name.slice(0, name.lastIndexOf('.'))}`;
    parts[part] = (parts[part] ?? 0) + shape.reduce((a, b) => a * b, 1);
  }
  return parts;
}

/**
 * The visual path of a checkpoint's tensors (official names), or null when it has none. The head
 * count is not stored; the release's 16 is assumed.
 */
export function visualPathFromTensors(tensors: ReadonlyMap<string, { shape: number[] }>, path: string): { dims: VisualDims; queryLen: number } | null {
  const query = tensors.get('visual_query.weight');
  if (!query) return null;
  if (query.shape.length !== 2) throw new InputError(`${path}: visual_query.weight has shape [${query.shape.join(', ')}], expected [query_len, v_embed_dim]`);
  const [queryLen, dim] = query.shape as [number, number];
  let depth = 0;
  while (tensors.has(`visual_blocks.${depth}.norm1.weight`)) depth++;
  const fc1 = tensors.get('visual_blocks.0.mlp.fc1.weight');
  const mlpHidden = fc1 ? fc1.shape[0]! : Math.trunc(dim * VISUAL_DEFAULTS.mlpRatio);
  const heads = VISUAL_DEFAULTS.heads;
  if (dim % heads !== 0) throw new InputError(`${path}: v_embed_dim ${dim} (visual_query.weight) is not divisible by the release's ${heads} visual heads`);
  return { dims: { dim, depth, heads, mlpHidden }, queryLen };
}
