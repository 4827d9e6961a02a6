// The runner contract (DESIGN.md "The runner contract"): what every backend — ORT graph, the float64
// reference forward, llama.cpp, an OpenAI-compatible server, null — offers the run engine. Runners
// know nothing about tasks: they score and generate text. Results stream back in request order.

export const BACKENDS = ['null', 'reference', 'ort', 'llamacpp', 'openai'] as const;
export type Backend = (typeof BACKENDS)[number];

export interface RunnerInfo {
  backend: Backend;
  /** `cpu`, `cuda`, or the server URL's host for remote backends. */
  device: string;
  /** Compute dtype: `float64` (reference), `fp32`, `fp16`, or the GGUF/quant type. */
  dtype: string;
  /** The model as the user named it (zoo id, path, repo id). */
  model: string;
  /** The PEFT label applied, or null. */
  peft: string | null;
  /** Library versions that decide the numbers (onnxruntime-node, node-llama-cpp...). */
  versions: Record<string, string>;
}

/** Score `continuation` given `context`: lm-evaluation-harness's loglikelihood request. */
export interface LoglikelihoodRequest {
  context: string;
  continuation: string;
  /** Optional (issue 10). Encoded image files the context refers to; runners without image input reject them. */
  images?: readonly Uint8Array[];
}

export interface LoglikelihoodResult {
  /** Sum of log p(continuation token | everything before it), natural log. */
  logprob: number;
  /** Whether greedy decoding from `context` would produce exactly the continuation's tokens. */
  isGreedy: boolean;
  /** Number of continuation tokens scored. */
  tokens: number;
}

export interface GenerateRequest {
  context: string;
  /** Stop at the first of these strings (not included in the result). */
  until: readonly string[];
  maxTokens: number;
  /** Optional (issue 10). Encoded image files the context refers to; runners without image input reject them. */
  images?: readonly Uint8Array[];
}

export interface GenerateResult {
  text: string;
  /** Tokens generated (including any cut by a stop string). */
  tokens: number;
}

export interface MemorySnapshot {
  /** Peak resident set size of this process so far (bytes). */
  peakRssBytes: number;
  /** Backend arena / allocator bytes where the backend reports them. */
  arenaBytes: number | null;
  /** Accelerator memory peak (bytes) where there is one. */
  deviceBytes: number | null;
  /** Bytes held by the KV cache at its largest, where known. */
  kvCacheBytes: number | null;
}

export interface ThroughputSnapshot {
  prefillTokens: number;
  prefillSeconds: number;
  decodeTokens: number;
  decodeSeconds: number;
}

export interface Runner {
  readonly info: RunnerInfo;
  loglikelihood(reqs: readonly LoglikelihoodRequest[]): AsyncIterable<LoglikelihoodResult>;
  generate(reqs: readonly GenerateRequest[]): AsyncIterable<GenerateResult>;
  memory(): MemorySnapshot;
  /** Tokens and seconds spent so far, for `throughput` records. */
  throughput(): ThroughputSnapshot;
  close(): Promise<void>;
}
