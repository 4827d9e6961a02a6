// HF LLaMA checkpoint -> GGUF (architecture `llama`), following llama.cpp's convert_hf_to_gguf.py
// `LlamaModel`: the `llama.*` hyperparameter keys, tensor names from gguf-py's tensor_mapping
// (model.layers.N.self_attn.q_proj -> blk.N.attn_q ...), the Q/K row permutation (HF stores
// q/k for rotate-half RoPE; llama.cpp's `llama` RoPE rotates adjacent pairs), and for `llama3`
// RoPE scaling the extra `rope_freqs.weight` tensor of per-frequency divisors.
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../../results/errors.ts';
import type { Checkpoint } from '../hf/checkpoint.ts';
import { layerPrefix, textTensorSpecs } from '../hf/tensor-names.ts';
import { CheckpointWeights } from '../hf/weights.ts';
import { defaultInvFreq } from '../reference-rope.ts';
import { ggufVocabFromTokenizer } from './vocab.ts';
import { writeGguf, type GgmlTensorType, type GgufTensor, type GgufValue } from './writer.ts';

export const GGUF_EXPORT_DTYPES = ['f32', 'f16'] as const;
export type GgufExportDtype = (typeof GGUF_EXPORT_DTYPES)[number];

/** gguf-py `LlamaFileType`: ALL_F32 = 0, MOSTLY_F16 = 1. */
const FILE_TYPE: Record<GgufExportDtype, number> = { f32: 0, f16: 1 };

/**
 * convert_hf_to_gguf.py `LlamaModel.permute`: reshape the [nHead * d, cols] weight to
 * (nHead, 2, d/2, cols), swap axes 1 and 2, reshape back. Row h*d + a*(d/2) + j (rotate-half
 * layout: a = 0 first half, a = 1 second half) moves to row h*d + 2j + a (interleaved pairs).
 */
export function permuteQk(weights: Float32Array, nHead: number, rows: number, cols: number): Float32Array {
  if (rows % (2 * nHead) !== 0) throw new Error(`permuteQk: ${rows} rows do not split into ${nHead} heads of even size`);
  const d = rows / nHead;
  const half = d / 2;
  const out = new Float32Array(weights.length);
  for (let h = 0; h < nHead; h++) {
    for (let a = 0; a < 2; a++) {
      for (let j = 0; j < half; j++) {
        const from = (h * d + a * half + j) * cols;
        const to = (h * d + 2 * j + a) * cols;
        out.set(weights.subarray(from, from + cols), to);
      }
    }
  }
  return out;
}

/**
 * `LlamaModel.generate_extra_tensors` for rope_type `llama3`: one factor per frequency that
 * llama.cpp divides the base frequency by (1 for high frequencies, `factor` for low ones, a smooth
 * blend between). convert reads original_max_position_embeddings from the top level of config.json
 * (default 8192, equal to rope_scaling's value in every Meta checkpoint); transformers reads it from
 * rope_scaling, and so do we, so checkpoints with another original context convert faithfully.
 */
export function llama3RopeFactors(theta: number, dim: number, scaling: { factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number }): Float32Array {
  const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: oldContext } = scaling;
  const lowFreqWavelen = oldContext / lowFreqFactor;
  const highFreqWavelen = oldContext / highFreqFactor;
  // convert computes freqs in float32 (torch.arange(..., dtype=float32)); the factors are then f32.
  const freqs = defaultInvFreq(theta, dim).map((f) => Math.fround(f));
  return Float32Array.from(freqs, (freq) => {
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highFreqWavelen) return 1;
    if (wavelen > lowFreqWavelen) return factor;
    const smooth = (oldContext / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
    return 1 / ((1 - smooth) / factor + smooth);
  });
}

/** HF tensor name suffix -> GGUF name suffix (gguf-py tensor_mapping.py, MODEL_ARCH.LLAMA). */
const LAYER_TENSORS: [string, string][] = [
  ['input_layernorm.weight', 'attn_norm.weight'],
  ['self_attn.q_proj.weight', 'attn_q.weight'],
  ['self_attn.k_proj.weight', 'attn_k.weight'],
  ['self_attn.v_proj.weight', 'attn_v.weight'],
  ['self_attn.o_proj.weight', 'attn_output.weight'],
  ['post_attention_layernorm.weight', 'ffn_norm.weight'],
  ['mlp.gate_proj.weight', 'ffn_gate.weight'],
  ['mlp.up_proj.weight', 'ffn_up.weight'],
  ['mlp.down_proj.weight', 'ffn_down.weight'],
];

function readJson(file: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (error) {
    throw new InputError(`${file}: not valid JSON (${(error as Error).message})`);
  }
}

export interface GgufModel {
  metadata: Map<string, GgufValue>;
  tensors: GgufTensor[];
}

/** The metadata and tensors of the GGUF file for a LLaMA (model_type `llama`) checkpoint. */
export function llamaGgufFromCheckpoint(checkpoint: Checkpoint, dtype: GgufExportDtype = 'f32'): GgufModel {
  const { arch } = checkpoint;
  if (arch.modelType !== 'llama') {
    throw new InputError(`${checkpoint.id}: GGUF export supports model_type "llama" (LLaMA 1-3.3); this checkpoint is "${arch.modelType}"`);
  }
  const t = arch.text;
  if (t.attentionBias || t.mlpBias) throw new InputError(`${checkpoint.id}: attention_bias/mlp_bias checkpoints are not exported to GGUF (no LLaMA release uses them)`);
  const scaling = t.ropeScaling;
  if (scaling && scaling.ropeType !== 'llama3' && scaling.ropeType !== 'linear') {
    throw new InputError(`${checkpoint.id}: rope_scaling type "${scaling.ropeType}" is not exported to GGUF (supported: linear, llama3)`);
  }
  const tokenizerFile = join(checkpoint.dir, 'tokenizer.json');
  if (!existsSync(tokenizerFile)) throw new InputError(`${tokenizerFile}: not found (GGUF files carry the vocabulary; the export reads it from tokenizer.json)`);
  const configFile = join(checkpoint.dir, 'tokenizer_config.json');
  const vocab = ggufVocabFromTokenizer(readJson(tokenizerFile), existsSync(configFile) ? readJson(configFile) : {}, t.vocabSize, tokenizerFile);

  const m = new Map<string, GgufValue>();
  const u32 = (value: number): GgufValue => ({ type: 'u32', value });
  const f32 = (value: number): GgufValue => ({ type: 'f32', value });
  m.set('general.architecture', { type: 'string', value: 'llama' });
  m.set('general.name', { type: 'string', value: checkpoint.id });
  m.set('general.file_type', u32(FILE_TYPE[dtype]));
  m.set('general.quantization_version', u32(2));
  m.set('llama.vocab_size', u32(t.vocabSize));
  m.set('llama.context_length', u32(t.maxPositionEmbeddings));
  m.set('llama.embedding_length', u32(t.hiddenSize));
  m.set('llama.block_count', u32(t.numLayers));
  m.set('llama.feed_forward_length', u32(t.intermediateSize));
  m.set('llama.rope.dimension_count', u32(t.headDim));
  m.set('llama.attention.head_count', u32(t.numHeads));
  m.set('llama.attention.head_count_kv', u32(t.numKvHeads));
  m.set('llama.rope.freq_base', f32(t.ropeTheta));
  m.set('llama.attention.layer_norm_rms_epsilon', f32(t.rmsNormEps));
  // convert writes key/value_length when config.json has head_dim; llama.cpp otherwise assumes
  // embedding_length / head_count, which is wrong for LLaMA 3.2-style explicit head_dim.
  if (t.headDim * t.numHeads !== t.hiddenSize || typeof checkpoint.config.head_dim === 'number') {
    m.set('llama.attention.key_length', u32(t.headDim));
    m.set('llama.attention.value_length', u32(t.headDim));
  }
  if (scaling?.ropeType === 'linear') {
    m.set('llama.rope.scaling.type', { type: 'string', value: 'linear' });
    m.set('llama.rope.scaling.factor', f32(scaling.factor));
  }
  for (const [k, v] of vocab.metadata) m.set(k, v);

  // convert's --outtype f16 keeps 1-D tensors (norms, rope_freqs) in F32.
  const typeFor = (shape: readonly number[]): GgmlTensorType => (dtype === 'f16' && shape.length > 1 ? 'F16' : 'F32');
  const shapes = new Map(textTensorSpecs(arch).map((s) => [s.name, s.shape]));
  const weights = CheckpointWeights.open(checkpoint.dir);
  const tensors: GgufTensor[] = [];
  try {
    const add = (hfName: string, ggufName: string, transform?: (data: Float32Array, shape: number[]) => Float32Array) => {
      const shape = shapes.get(hfName);
      if (!shape) throw new Error(`GGUF export: no tensor spec for ${hfName}`);
      let data = weights.readFloat32(hfName, { expectShape: shape });
      if (transform) data = transform(data, shape);
      tensors.push({ name: ggufName, shape, type: typeFor(shape), data });
    };
    add('model.embed_tokens.weight', 'token_embd.weight');
    if (scaling?.ropeType === 'llama3') {
      const { lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings } = scaling;
      if (lowFreqFactor === undefined || highFreqFactor === undefined || originalMaxPositionEmbeddings === undefined) {
        throw new InputError(`${checkpoint.id}: rope_scaling of type llama3 needs low_freq_factor, high_freq_factor and original_max_position_embeddings`);
      }
      const factors = llama3RopeFactors(t.ropeTheta, t.headDim, { factor: scaling.factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings });
      tensors.push({ name: 'rope_freqs.weight', shape: [factors.length], type: 'F32', data: factors });
    }
    for (let i = 0; i < t.numLayers; i++) {
      for (const [hf, gg] of LAYER_TENSORS) {
        const hfName = `${layerPrefix(i)}.${hf}`;
        if (hf === 'self_attn.q_proj.weight') add(hfName, `blk.${i}.${gg}`, (d, s) => permuteQk(d, t.numHeads, s[0]!, s[1]!));
        else if (hf === 'self_attn.k_proj.weight') add(hfName, `blk.${i}.${gg}`, (d, s) => permuteQk(d, t.numKvHeads, s[0]!, s[1]!));
        else add(hfName, `blk.${i}.${gg}`);
      }
    }
    add('model.norm.weight', 'output_norm.weight');
    // Tied embeddings (3.2 1B/3B): convert writes no output.weight and llama.cpp reuses token_embd.
    if (!t.tieWordEmbeddings) add('lm_head.weight', 'output.weight');
  } finally {
    weights.close();
  }
  return { metadata: m, tensors };
}

/** Writes the GGUF file of a LLaMA checkpoint to `outPath`; returns what was written. */
export function exportCheckpointToGguf(checkpoint: Checkpoint, outPath: string, dtype: GgufExportDtype = 'f32'): GgufModel {
  const model = llamaGgufFromCheckpoint(checkpoint, dtype);
  writeGguf(outPath, model.metadata, model.tensors);
  return model;
}
