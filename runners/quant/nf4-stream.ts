// QLoRA's base linears one tensor at a time, for a graph builder that stores each as NF4 as soon as it
// is read (runners/ort/llama-peft.ts ortQloraPlanStreamed): a float checkpoint's linear is read as
// fp32 (that tensor only), quantized exactly as quantizeReferenceNf4 / bitsandbytes quantize_4bit do
// (nf4QuantizeDouble: same packed bytes, same dequantized absmax), and its fp32 array is dropped
// before the next linear is read; an NF4 checkpoint's linear (`llama-eval quantize --to nf4`, the
// bitsandbytes save layout) is taken as its packed bytes with the double-quantized absmax expanded to
// float32, never dequantized. So no float model and no second copy of the weights is ever built.
import type { CheckpointWeights } from '../hf/weights.ts';
import { InputError } from '../../results/errors.ts';
import { nf4QuantizeDouble } from './nf4.ts';

/** One linear as MatMulBnb4 takes it: packed codes (high nibble first) and float32 block absmax. */
export interface Nf4Packed {
  packed: Uint8Array;
  absmax: Float32Array;
}

/** Where a streamed linear came from, for a caller that watches the load (tests, the bench). */
export type Nf4StreamEvent =
  /** A float linear was read as fp32 (one tensor's worth of fp32 is now alive). */
  | { kind: 'fp32-read'; name: string; elements: number }
  /** That linear is quantized and its fp32 array is no longer referenced by the loader. */
  | { kind: 'fp32-dropped'; name: string }
  /** An NF4 checkpoint's linear was taken as stored, with no fp32 copy. */
  | { kind: 'nf4-read'; name: string };

/** quantize_4bit(nf4, blocksize 64, compress_statistics=True), keeping the packed codes and absmax. */
export function quantizeLinearNf4(w: Float32Array): Nf4Packed {
  const { tensor } = nf4QuantizeDouble(w);
  return { packed: tensor.packed, absmax: tensor.absmax };
}

/**
 * Quantizes the linear `read()` returns and lets its fp32 array go: the array lives in this frame
 * only, so at most one fp32 linear is alive at a time however many the caller streams.
 */
export function streamFloatLinear(name: string, read: () => Float32Array, onEvent?: (e: Nf4StreamEvent) => void): Nf4Packed {
  let w: Float32Array | null = read();
  onEvent?.({ kind: 'fp32-read', name, elements: w.length });
  const out = quantizeLinearNf4(w);
  w = null;
  onEvent?.({ kind: 'fp32-dropped', name });
  return out;
}

export const QUANT_STATE_SUFFIX = '.quant_state.bitsandbytes__nf4';

/** float32 view of raw little-endian bytes (copied, so alignment does not matter). */
export function asF32(bytes: Uint8Array): Float32Array {
  return new Float32Array(Uint8Array.from(bytes).buffer);
}

export interface Nf4StoredWeight extends Nf4Packed {
  /** The weight's shape from its quant_state ([out, in] for a Linear). */
  shape: number[];
  blockSize: number;
  /** The file's code book (bitsandbytes saves it beside each weight). */
  quantMap: Float32Array;
}

/**
 * The packed codes and float32 absmax of NF4 weight `name` of a bitsandbytes 4-bit checkpoint:
 * dequantize_blockwise(absmax, state2) + offset, with the file's own nested quant map, as
 * QuantState.from_dict + dequantize_4bit compute it before the codes are looked up.
 */
export function readStoredNf4(weights: CheckpointWeights, name: string, expectShape?: readonly number[]): Nf4StoredWeight {
  const where = `${weights.dir}: NF4 weight "${name}"`;
  let state: { quant_type?: unknown; blocksize?: unknown; shape?: unknown; nested_blocksize?: unknown; nested_offset?: unknown };
  try {
    state = JSON.parse(new TextDecoder().decode(weights.readBytes(`${name}${QUANT_STATE_SUFFIX}`))) as typeof state;
  } catch (error) {
    throw new InputError(`${where}: quant_state is not valid JSON (${(error as Error).message})`);
  }
  const shape = state.shape;
  if (state.quant_type !== 'nf4' || typeof state.blocksize !== 'number' || !Array.isArray(shape) || shape.some((d) => !Number.isInteger(d)) || typeof state.nested_offset !== 'number' || typeof state.nested_blocksize !== 'number') {
    throw new InputError(`${where}: quant_state must give quant_type "nf4", blocksize, shape, nested_blocksize and nested_offset (only double-quantized NF4 is read)`);
  }
  if (expectShape && (expectShape.length !== shape.length || expectShape.some((d, i) => d !== shape[i]))) {
    throw new InputError(`${where} has shape [${shape.join(', ')}], expected [${expectShape.join(', ')}] from config.json`);
  }
  const n = (shape as number[]).reduce((a, b) => a * b, 1);
  const packed = weights.readBytes(name);
  const qabsmax = weights.readBytes(`${name}.absmax`);
  const quantMap = asF32(weights.readBytes(`${name}.quant_map`));
  const nestedAbsmax = asF32(weights.readBytes(`${name}.nested_absmax`));
  const nestedMap = asF32(weights.readBytes(`${name}.nested_quant_map`));
  const blocks = Math.ceil(n / state.blocksize);
  if (packed.length !== Math.ceil(n / 2) || qabsmax.length !== blocks || quantMap.length !== 16 || nestedMap.length !== 256) {
    throw new InputError(`${where}: tensor sizes do not match quant_state shape [${shape.join(', ')}] with blocksize ${state.blocksize}`);
  }
  const absmax = new Float32Array(blocks);
  for (let b = 0; b < blocks; b++) {
    absmax[b] = Math.fround(nestedMap[qabsmax[b]!]! * nestedAbsmax[Math.floor(b / state.nested_blocksize)]!) + state.nested_offset;
  }
  return { packed, absmax, shape: shape as number[], blockSize: state.blocksize, quantMap };
}
