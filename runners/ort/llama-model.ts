// A LLaMA ONNX graph in an ORT session, with a typed forward over padded batches and a KV cache
// held as plain Float32Arrays ([b, kv_heads, len, d] per layer, the graph's present.* outputs).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ModelArch, TextArch } from '../arch.ts';
import type { Checkpoint } from '../hf/checkpoint.ts';
import { CheckpointWeights } from '../hf/weights.ts';
import { temperatureTuningFrom, type TensorSource } from '../reference-weights.ts';
import { prefixedSource } from './llama4-text-graph.ts';
import { buildLlamaGraph, llamaWeightBytes, type ComputeDtype, type LlamaGraphPeft, pastKeyName, pastValueName, presentKeyName, presentValueName } from './llama-graph.ts';
import { OrtSession, type Feed, type OrtDevice, type SessionOptions } from './session.ts';

export interface KvCache {
  batch: number;
  /** Cached positions (past_sequence_length). */
  length: number;
  keys: Float32Array[];
  values: Float32Array[];
}

export interface ForwardBatch {
  /** [b][s] token ids (pad with any valid id where attentionMask is 0). */
  inputIds: readonly (readonly number[])[];
  /** [b][past + s] 1 for real tokens, 0 for padding, covering the cache and the new tokens. */
  attentionMask: readonly (readonly number[])[];
  past: KvCache;
  /** Logits of the last k positions only (0 or absent: all). */
  logitsToKeep?: number;
  /**
   * Logits of these positions only, as rows of the flattened [b * s] batch (row i * s + j is
   * sequence i, new token j), in this order: logits [rows.length, vocab]. Excludes logitsToKeep.
   */
  logitsRows?: readonly number[];
}

export interface ForwardResult {
  /** [b, s, vocab], or [b, k, vocab] with logitsToKeep k, or [rows, vocab] with logitsRows. */
  logits: Float32Array;
  present: KvCache;
}

function flatInt64(rows: readonly (readonly number[])[]): BigInt64Array {
  const out = new BigInt64Array(rows.reduce((n, r) => n + r.length, 0));
  let i = 0;
  for (const row of rows) for (const v of row) out[i++] = BigInt(v);
  return out;
}

/** The `logits_indices` feed: the requested rows as [1, n], else the last k (or all) positions as [b, k]. */
export function logitsIndicesFeed(b: number, s: number, batch: Pick<ForwardBatch, 'logitsToKeep' | 'logitsRows'>): Feed {
  if (batch.logitsRows !== undefined) {
    if (batch.logitsToKeep) throw new RangeError('forward: pass logitsRows or logitsToKeep, not both');
    const rows = batch.logitsRows;
    if (rows.length === 0) throw new RangeError('forward: logitsRows is empty');
    for (const r of rows) if (!Number.isInteger(r) || r < 0 || r >= b * s) throw new RangeError(`forward: logits row ${r} is outside the batch's ${b} x ${s} positions [0, ${b * s})`);
    return { data: BigInt64Array.from(rows, BigInt), dims: [1, rows.length] };
  }
  const keep = batch.logitsToKeep ?? 0;
  if (!Number.isInteger(keep) || keep < 0) throw new RangeError(`forward: logitsToKeep ${keep} must be a non-negative integer`);
  // HF logits_to_keep: 0 keeps all, and k past the sequence keeps the whole sequence.
  const k = keep === 0 ? s : Math.min(keep, s);
  const data = new BigInt64Array(b * k);
  for (let i = 0; i < b; i++) for (let j = 0; j < k; j++) data[i * k + j] = BigInt(i * s + s - k + j);
  return { data, dims: [b, k] };
}

/** position_ids as the graph expects them: cumsum(attention_mask) - 1 at the new tokens' slots. */
export function positionIdsFor(attentionMask: readonly (readonly number[])[], newTokens: number): number[][] {
  return attentionMask.map((row) => {
    let count = 0;
    const positions = row.map((m) => (count += m) - 1);
    // Padded query slots get a clamped position; their outputs are never read.
    return positions.slice(row.length - newTokens).map((p) => Math.max(p, 0));
  });
}

export interface LlamaModelOptions extends SessionOptions {
  /** Build the fused contrib-op graph (llama-fused.ts) instead of the plain-op one. */
  fused?: boolean;
  /** Load the weights as ONNX external data; default: when they exceed 1 GiB. */
  externalData?: boolean;
  /**
   * PEFT hook (runners/ort/llama-peft.ts ortPeftPlan): the adapter's graph changes, and the feeds of
   * its adapter inputs, added to every forward (swap them with setAdapterFeeds).
   */
  peft?: { graph: LlamaGraphPeft; feeds: Record<string, Feed> };
  /** Compute dtype of the graph (llama-graph.ts COMPUTE_DTYPES); KV cache and logits stay fp32 at the edge. */
  dtype?: ComputeDtype;
}

/** transformers.js / optimum name of the weights file next to model.onnx. */
export const EXTERNAL_DATA_FILE = 'model.onnx_data';
const EXTERNAL_DATA_ABOVE = 2 ** 30;

export class OrtLlamaModel {
  private constructor(
    private readonly session: OrtSession,
    readonly arch: ModelArch,
    readonly graphBytes: number,
    private adapterFeeds: Record<string, Feed> = {},
    /** The graph's compute dtype (reported as the runner's dtype). */
    readonly dtype: ComputeDtype = 'fp32',
  ) {}

  /** Replaces the adapter inputs' feeds: another adapter of the same shape on the same session. */
  setAdapterFeeds(feeds: Record<string, Feed>): void {
    this.adapterFeeds = feeds;
  }

  get text(): TextArch {
    return this.arch.text;
  }

  get device(): OrtDevice {
    return this.session.device;
  }

  static async create(arch: ModelArch, rawConfig: Record<string, unknown>, weights: TensorSource, options: LlamaModelOptions = {}): Promise<OrtLlamaModel> {
    const graphOptions = { temperatureTuning: temperatureTuningFrom(arch, rawConfig), fused: options.fused, logitsIndices: true, peft: options.peft?.graph, dtype: options.dtype };
    const feeds = options.peft?.feeds ?? {};
    const external = options.externalData ?? llamaWeightBytes(arch) > EXTERNAL_DATA_ABOVE;
    if (!external) {
      const graph = buildLlamaGraph(arch, weights, graphOptions);
      return new OrtLlamaModel(await OrtSession.create(graph, options), arch, graph.byteLength, feeds, options.dtype ?? 'fp32');
    }
    // Weights stream to a scratch file one tensor at a time and ORT loads them from there, so the
    // process never holds the model twice (JS arrays + protobuf) on top of ORT's copy.
    const dir = mkdtempSync(join(tmpdir(), 'llama-eval-ort-'));
    try {
      const modelPath = join(dir, 'model.onnx');
      const graph = buildLlamaGraph(arch, weights, { ...graphOptions, externalData: { path: join(dir, EXTERNAL_DATA_FILE), location: EXTERNAL_DATA_FILE } });
      writeFileSync(modelPath, graph);
      return new OrtLlamaModel(await OrtSession.create(modelPath, options), arch, graph.byteLength, feeds, options.dtype ?? 'fp32');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  static async fromCheckpoint(checkpoint: Checkpoint, options: LlamaModelOptions = {}): Promise<OrtLlamaModel> {
    const weights = CheckpointWeights.open(checkpoint.dir);
    try {
      // Llama4ForConditionalGeneration keeps its text model under `language_model.`: a text-only
      // forward reads those tensors, as HF's text path does (images: llama4-vision-runner.ts).
      const vision4 = checkpoint.arch.modelType === 'llama4' && checkpoint.arch.vision !== null;
      return await OrtLlamaModel.create(checkpoint.arch, checkpoint.config, vision4 ? prefixedSource(weights, 'language_model.') : weights, options);
    } finally {
      weights.close();
    }
  }

  emptyCache(batch: number): KvCache {
    const n = this.text.numLayers;
    return { batch, length: 0, keys: Array.from({ length: n }, () => new Float32Array(0)), values: Array.from({ length: n }, () => new Float32Array(0)) };
  }

  async forward(batch: ForwardBatch): Promise<ForwardResult> {
    const t = this.text;
    const b = batch.inputIds.length;
    const s = batch.inputIds[0]?.length ?? 0;
    if (b === 0 || s === 0) throw new RangeError('forward: empty batch');
    if (batch.past.batch !== b) throw new RangeError(`forward: cache batch ${batch.past.batch} != input batch ${b}`);
    const total = batch.past.length + s;
    for (const [i, row] of batch.inputIds.entries()) {
      if (row.length !== s) throw new RangeError(`forward: row ${i} has ${row.length} tokens, expected ${s} (pad the batch)`);
      if (batch.attentionMask[i]?.length !== total) throw new RangeError(`forward: attention_mask row ${i} must cover past + new = ${total} slots`);
      for (const id of row) {
        if (!Number.isInteger(id) || id < 0 || id >= t.vocabSize) throw new RangeError(`token id ${id} is outside the vocabulary [0, ${t.vocabSize})`);
      }
    }
    const feeds: Record<string, Feed> = {
      ...this.adapterFeeds,
      input_ids: { data: flatInt64(batch.inputIds), dims: [b, s] },
      attention_mask: { data: flatInt64(batch.attentionMask), dims: [b, total] },
      position_ids: { data: flatInt64(positionIdsFor(batch.attentionMask, s)), dims: [b, s] },
      logits_indices: logitsIndicesFeed(b, s, batch),
    };
    const kvDims = [b, t.numKvHeads, batch.past.length, t.headDim];
    for (let i = 0; i < t.numLayers; i++) {
      feeds[pastKeyName(i)] = { data: batch.past.keys[i]!, dims: kvDims };
      feeds[pastValueName(i)] = { data: batch.past.values[i]!, dims: kvDims };
    }
    const out = await this.session.run(feeds);
    const layers = Array.from({ length: t.numLayers }, (_, i) => i);
    return {
      logits: out.logits!.data as Float32Array,
      present: {
        batch: b,
        length: total,
        keys: layers.map((i) => out[presentKeyName(i)]!.data as Float32Array),
        values: layers.map((i) => out[presentValueName(i)]!.data as Float32Array),
      },
    };
  }

  async close(): Promise<void> {
    await this.session.close();
  }
}

/** Bytes held by a cache. */
export function cacheBytes(cache: KvCache): number {
  return [...cache.keys, ...cache.values].reduce((n, a) => n + a.byteLength, 0);
}

/** A batch-1 cache repeated `n` times along the batch axis (one prefill shared by n continuations). */
export function repeatCache(cache: KvCache, n: number): KvCache {
  if (cache.batch !== 1) throw new RangeError('repeatCache: expects a batch-1 cache');
  const repeat = (a: Float32Array) => {
    const out = new Float32Array(a.length * n);
    for (let i = 0; i < n; i++) out.set(a, i * a.length);
    return out;
  };
  return { batch: n, length: cache.length, keys: cache.keys.map(repeat), values: cache.values.map(repeat) };
}

/** log-softmax of row `row` of a [rows, vocab] logits array, in float64. */
export function logSoftmaxRow(logits: Float32Array, row: number, vocab: number): Float64Array {
  const base = row * vocab;
  let max = -Infinity;
  for (let i = 0; i < vocab; i++) max = Math.max(max, logits[base + i]!);
  let sum = 0;
  for (let i = 0; i < vocab; i++) sum += Math.exp(logits[base + i]! - max);
  const lse = max + Math.log(sum);
  const out = new Float64Array(vocab);
  for (let i = 0; i < vocab; i++) out[i] = logits[base + i]! - lse;
  return out;
}

/**
 * log p(target) and the argmax of row `row` of a [rows, vocab] logits array in two passes, without
 * the Float64Array of logSoftmaxRow: a scorer reads one entry of a 128K-wide row. Same float64
 * arithmetic as logSoftmaxRow (max, then sum of exp(x - max)), so the values are identical.
 */
export function scoreRow(logits: Float32Array, row: number, vocab: number, target: number): { logprob: number; argmax: number } {
  const base = row * vocab;
  let best = 0;
  for (let i = 1; i < vocab; i++) if (logits[base + i]! > logits[base + best]!) best = i;
  const max = logits[base + best]!;
  let sum = 0;
  for (let i = 0; i < vocab; i++) sum += Math.exp(logits[base + i]! - max);
  return { logprob: logits[base + target]! - (max + Math.log(sum)), argmax: best };
}

/** Index of the largest entry of a logits row (ties to the lower id, as torch.argmax). */
export function argmaxRow(logits: Float32Array, row: number, vocab: number): number {
  const base = row * vocab;
  let best = 0;
  for (let i = 1; i < vocab; i++) if (logits[base + i]! > logits[base + best]!) best = i;
  return best;
}

/** log p(ids[i] | ids[<i]) from one unpadded forward; entry 0 is null (the `logprobs` contract). */
export async function ortTokenLogprobs(model: OrtLlamaModel, ids: readonly number[]): Promise<(number | null)[]> {
  const { logits } = await model.forward({ inputIds: [ids], attentionMask: [ids.map(() => 1)], past: model.emptyCache(1) });
  const vocab = model.text.vocabSize;
  return ids.map((id, i) => (i === 0 ? null : logSoftmaxRow(logits, i - 1, vocab)[id]!));
}
