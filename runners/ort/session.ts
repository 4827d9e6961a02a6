// The only file that imports onnxruntime-node (STYLE.md, after transformers.js's
// backends/onnx.js): session creation with execution-provider selection, thread and
// graph-optimization options, and run helpers that speak plain typed arrays so callers never
// see ORT types.
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { InputError } from '../../results/errors.ts';

export const ORT_DEVICES = ['cpu', 'cuda'] as const;
export type OrtDevice = (typeof ORT_DEVICES)[number];
export const GRAPH_OPT_LEVELS = ['disabled', 'basic', 'extended', 'all'] as const;
export type GraphOptLevel = (typeof GRAPH_OPT_LEVELS)[number];

export const CUDA_INSTALL_COMMAND = 'ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js';

export interface SessionOptions {
  device?: OrtDevice;
  /** Threads inside one op; 0 lets ORT pick (one per physical core). */
  intraOpThreads?: number;
  graphOptimization?: GraphOptLevel;
  /**
   * ORT config `session.disable_prepacking`: kernels keep their constant weights as given instead of
   * adding a prepacked copy (the QLoRA graph's tied embedding would otherwise be held twice, by the
   * Gather and by the lm_head Gemm's packed copy).
   */
  disablePrepacking?: boolean;
}

export type TensorData = Float32Array | Uint8Array | Int32Array | BigInt64Array | Uint16Array | Int8Array;
export interface Feed {
  data: TensorData;
  dims: readonly number[];
}

export function ortVersion(): string {
  return ort.env.versions.node ?? ort.env.versions.common;
}

function bindingDir(): string | null {
  try {
    const require = createRequire(import.meta.url);
    const pkg = dirname(require.resolve('onnxruntime-node/package.json'));
    const dir = join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
    return existsSync(dir) ? dir : null;
  } catch {
    return null;
  }
}

/**
 * True when the CUDA EP can load: the binding lists it AND its provider library was
 * installed (onnxruntime-node ships CUDA support as a separate download, so "listed but
 * not bundled" is the normal state of a CPU install).
 */
export function cudaAvailable(): boolean {
  const listed = ort.listSupportedBackends().find((b) => b.name === 'cuda');
  if (!listed) return false;
  const dir = bindingDir();
  if (dir === null) return false;
  return readdirSync(dir).some((f) => f.startsWith('libonnxruntime_providers_cuda'));
}

export function assertDevice(device: OrtDevice): void {
  if (device === 'cuda' && !cudaAvailable()) {
    throw new InputError(`--device cuda: the onnxruntime-node CUDA provider is not installed; install it with \`${CUDA_INSTALL_COMMAND}\` (needs CUDA 12 + cuDNN 9), or use --device cpu`);
  }
}

/** A loaded model with a typed-array run helper. */
export class OrtSession {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly device: OrtDevice,
  ) {}

  /** `model` is the serialized graph, or the path of a .onnx file (which may use external data). */
  static async create(model: Uint8Array | string, options: SessionOptions = {}): Promise<OrtSession> {
    const device = options.device ?? 'cpu';
    assertDevice(device);
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      executionProviders: [device],
      intraOpNumThreads: options.intraOpThreads ?? 0,
      interOpNumThreads: 1,
      graphOptimizationLevel: options.graphOptimization ?? 'all',
      // The benches time steady state; the arena keeps repeated runs allocation-free.
      enableCpuMemArena: true,
      ...(options.disablePrepacking ? { extra: { session: { disable_prepacking: '1' } } } : {}),
    };
    const session = typeof model === 'string'
      ? await ort.InferenceSession.create(model, sessionOptions)
      : await ort.InferenceSession.create(model, sessionOptions);
    return new OrtSession(session, device);
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** Builds ORT tensors once so timed loops measure the kernel, not tensor wrapping. */
  prepare(feeds: Record<string, Feed>): PreparedFeeds {
    const out: Record<string, ort.Tensor> = {};
    for (const [name, f] of Object.entries(feeds)) out[name] = new ort.Tensor(tensorType(f.data), f.data, f.dims);
    return { tensors: out };
  }

  /** Runs and returns every output as its typed array and dims. */
  async run(feeds: Record<string, Feed>): Promise<Record<string, { data: TensorData; dims: number[] }>> {
    return this.runPrepared(this.prepare(feeds));
  }

  async runPrepared(prepared: PreparedFeeds): Promise<Record<string, { data: TensorData; dims: number[] }>> {
    const results = await this.session.run(prepared.tensors as Record<string, ort.Tensor>);
    const out: Record<string, { data: TensorData; dims: number[] }> = {};
    for (const [name, t] of Object.entries(results)) out[name] = { data: t.data as TensorData, dims: [...t.dims] };
    return out;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

export interface PreparedFeeds {
  /** Opaque to callers: ORT tensors keyed by input name. */
  tensors: Record<string, unknown>;
}

function tensorType(data: TensorData): 'float32' | 'uint8' | 'int32' | 'int64' | 'float16' | 'int8' {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Int8Array) return 'int8';
  return 'float16';
}

/** Convenience: create, run once, close. */
export async function runOnce(model: Uint8Array, feeds: Record<string, Feed>, options: SessionOptions = {}): Promise<Record<string, { data: TensorData; dims: number[] }>> {
  const s = await OrtSession.create(model, options);
  try {
    return await s.run(feeds);
  } finally {
    await s.close();
  }
}
