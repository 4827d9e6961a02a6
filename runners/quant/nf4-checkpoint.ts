// NF4 checkpoints in the layout transformers saves a bitsandbytes 4-bit model in
// (`model.save_pretrained` after `load_in_4bit=True`): config.json gains `quantization_config`
// (BitsAndBytesConfig.to_dict) and each quantized Linear's `weight` becomes
//   <module>.weight                                  U8  [ceil(n/2), 1]  two codes a byte, high nibble first
//   <module>.weight.absmax                           U8  [n/64]          8-bit code of (absmax - offset)
//   <module>.weight.quant_map                        F32 [16]            the NF4 code book
//   <module>.weight.nested_absmax                    F32 [ceil(n/64/256)]
//   <module>.weight.nested_quant_map                 F32 [256]           create_dynamic_map(signed=True)
//   <module>.weight.quant_state.bitsandbytes__nf4    U8  JSON bytes of the non-tensor state
// (bitsandbytes functional.py QuantState.as_dict(packed=True); utils.py pack_dict_to_tensor). Reading
// dequantizes with the file's own quant maps, as QuantState.from_dict + dequantize_4bit do.
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../../results/errors.ts';
import { textTensorSpecs } from '../hf/tensor-names.ts';
import { CheckpointWeights } from '../hf/weights.ts';
import type { Checkpoint } from '../hf/checkpoint.ts';
import { loadReferenceModel, type ReferenceModel, type TensorSource } from '../reference-weights.ts';
import { ABSMAX_BLOCK, doubleQuantizeAbsmax, NF4_BLOCK, NF4_CODE, nf4Quantize } from './nf4.ts';
import { f32Bytes, writeRawSafetensors, type RawTensor } from './safetensors-raw.ts';
import { QUANT_STATE_SUFFIX, readStoredNf4 } from './nf4-stream.ts';

export { QUANT_STATE_SUFFIX };

/** BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type='nf4', bnb_4bit_use_double_quant=True).to_dict(). */
export function bnbNf4QuantizationConfig(computeDtype = 'float32'): Record<string, unknown> {
  return {
    _load_in_4bit: true,
    _load_in_8bit: false,
    bnb_4bit_compute_dtype: computeDtype,
    bnb_4bit_quant_storage: 'uint8',
    bnb_4bit_quant_type: 'nf4',
    bnb_4bit_use_double_quant: true,
    llm_int8_enable_fp32_cpu_offload: false,
    llm_int8_has_fp16_weight: false,
    llm_int8_skip_modules: null,
    llm_int8_threshold: 6.0,
    load_in_4bit: true,
    load_in_8bit: false,
    quant_method: 'bitsandbytes',
  };
}

/** Whether a config.json describes a bitsandbytes NF4 checkpoint. */
export function isBnbNf4Config(config: Record<string, unknown>): boolean {
  const q = config.quantization_config as Record<string, unknown> | undefined;
  return q?.quant_method === 'bitsandbytes' && q.load_in_4bit === true && q.bnb_4bit_quant_type === 'nf4';
}

/** The checkpoint tensors bitsandbytes quantizes: 2-D Linear weights other than lm_head / embeddings. */
export function isNf4Target(name: string, shape: readonly number[]): boolean {
  return shape.length === 2 && /(_proj|\.router)\.weight$/.test(name);
}

/** json.dumps of the packed quant state (Python's default ", " / ": " separators, insertion order). */
function quantStateJson(shape: readonly number[], offset: number): string {
  return `{"quant_type": "nf4", "blocksize": ${NF4_BLOCK}, "dtype": "float32", "shape": [${shape.join(', ')}], "nested_blocksize": ${ABSMAX_BLOCK}, "nested_dtype": "float32", "nested_offset": ${offset}}`;
}

/** The six tensors bitsandbytes saves for one NF4 weight of shape [out, in]. */
export function nf4WeightTensors(name: string, shape: readonly number[], w: Float32Array): RawTensor[] {
  const t = nf4Quantize(w, NF4_BLOCK);
  const d = doubleQuantizeAbsmax(t.absmax, ABSMAX_BLOCK);
  const state = new TextEncoder().encode(quantStateJson(shape, d.offset));
  return [
    { name, dtype: 'U8', shape: [t.packed.length, 1], bytes: t.packed },
    { name: `${name}.absmax`, dtype: 'U8', shape: [d.qabsmax.length], bytes: d.qabsmax },
    { name: `${name}.quant_map`, dtype: 'F32', shape: [16], bytes: f32Bytes(Float32Array.from(NF4_CODE)) },
    { name: `${name}.nested_absmax`, dtype: 'F32', shape: [d.absmax2.length], bytes: f32Bytes(d.absmax2) },
    { name: `${name}.nested_quant_map`, dtype: 'F32', shape: [d.code.length], bytes: f32Bytes(d.code) },
    { name: `${name}${QUANT_STATE_SUFFIX}`, dtype: 'U8', shape: [state.length], bytes: state },
  ];
}

const COPIED_FILES = ['generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'tokenizer.model', 'special_tokens_map.json'];

/** Writes an NF4 (double-quant) copy of `checkpoint` into `outDir`. Returns the quantized tensor names. */
export function writeNf4Checkpoint(checkpoint: Checkpoint, outDir: string): string[] {
  if (isBnbNf4Config(checkpoint.config)) throw new InputError(`${checkpoint.dir} is already an NF4 checkpoint (quantization_config.quant_method bitsandbytes)`);
  mkdirSync(outDir, { recursive: true });
  const weights = CheckpointWeights.open(checkpoint.dir);
  const tensors: RawTensor[] = [];
  const quantized: string[] = [];
  try {
    for (const spec of textTensorSpecs(checkpoint.arch)) {
      const data = weights.readFloat32(spec.name, { expectShape: spec.shape });
      if (isNf4Target(spec.name, spec.shape)) {
        tensors.push(...nf4WeightTensors(spec.name, spec.shape, data));
        quantized.push(spec.name);
      } else {
        tensors.push({ name: spec.name, dtype: 'F32', shape: spec.shape, bytes: f32Bytes(data) });
      }
    }
  } finally {
    weights.close();
  }
  writeRawSafetensors(join(outDir, 'model.safetensors'), tensors);
  const config = { ...checkpoint.config, torch_dtype: 'float32', quantization_config: bnbNf4QuantizationConfig() };
  writeFileSync(join(outDir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  for (const file of COPIED_FILES) {
    if (existsSync(join(checkpoint.dir, file))) copyFileSync(join(checkpoint.dir, file), join(outDir, file));
  }
  return quantized;
}

/** Reads an NF4 checkpoint's weights as float32: quantized ones are dequantized on read. */
export class Nf4TensorSource implements TensorSource {
  constructor(private readonly weights: CheckpointWeights) {}

  has(name: string): boolean {
    return this.weights.has(name);
  }

  readFloat32(name: string, options: { expectShape?: readonly number[] } = {}): Float32Array {
    if (!this.weights.has(`${name}${QUANT_STATE_SUFFIX}`)) return this.weights.readFloat32(name, options);
    // dequantize_4bit: code * absmax, with the file's own code book.
    const { packed, absmax, shape, blockSize, quantMap } = readStoredNf4(this.weights, name, options.expectShape);
    const n = shape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const byte = packed[i >> 1]!;
      out[i] = quantMap[(i & 1) === 0 ? byte >> 4 : byte & 0x0f]! * absmax[Math.floor(i / blockSize)]!;
    }
    return out;
  }
}

/** The reference model of an NF4 checkpoint (weights dequantized to float32 as bitsandbytes does). */
export function loadReferenceFromNf4Checkpoint(checkpoint: { dir: string; arch: Checkpoint['arch']; config: Record<string, unknown> }): ReferenceModel {
  const weights = CheckpointWeights.open(checkpoint.dir);
  try {
    return loadReferenceModel(checkpoint.arch, checkpoint.config, new Nf4TensorSource(weights));
  } finally {
    weights.close();
  }
}
