// The task contract (STYLE.md, after lm-evaluation-harness minus its regrets): a task is a typed
// object of pure functions in a file of its own. The run engine asks a task for its documents, turns
// each into runner requests and hands the runner's answers back to the task's scorer; tasks never
// see a runner and runners never see a task.

export const SUITES = ['commonsense', 'arithmetic', 'legal', 'medical', 'medical-vqa'] as const;
export type SuiteName = (typeof SUITES)[number];

export const PROTOCOLS = ['loglikelihood', 'generation'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

export interface TaskLoadOptions {
  /** `--data <path>`: a local file or directory in the upstream format, instead of the default source. */
  dataPath?: string;
  /** Never touch the network (HF_HUB_OFFLINE=1 or --offline). */
  offline: boolean;
  /** Use at most this many documents (the first N in file order). */
  limit?: number;
  env?: NodeJS.ProcessEnv;
}

/** Where a task's documents came from and what they hash to (compare/regress refuse differing hashes). */
export interface LoadedDocs<D> {
  status: 'loaded';
  docs: D[];
  /** Files read, for the manifest. */
  files: { path: string; sha256: string }[];
  /** sha256 over the documents actually used (after --limit), stable across machines. */
  dataHash: string;
  /** e.g. `bundled sample (suites/data/medical/pubmedqa)`, `HF cache qiaojin/PubMedQA@rev`, `--data ./x.jsonl`. */
  source: string;
}

/** A task whose data is not available (offline and uncached): listed as skipped, never scored as zero. */
export interface SkippedTask {
  status: 'skipped';
  reason: string;
}

export type LoadOutcome<D> = LoadedDocs<D> | SkippedTask;

/** Loglikelihood multiple choice: one context, N continuations, the gold index. */
export interface MultipleChoice {
  context: string;
  /** The continuations exactly as scored, lm-eval's target delimiter (a space) included. */
  choices: string[];
  gold: number;
  /**
   * Optional. The lengths acc_norm divides by: lm-eval uses len(doc_to_choice text), i.e. without the
   * delimiter. Absent means choices[i].length.
   */
  normLengths?: number[];
  /**
   * Optional. One context per choice (winogrande's partial evaluation: the sentence up to the blank
   * with each option filled in, then one shared continuation). When present, request i is
   * (contexts[i], choices[i]) and `context` is only their common prefix.
   */
  contexts?: string[];
  /**
   * Optional. The task description that opens `context` (MMLU's "The following are multiple choice
   * questions..."); few-shot examples go after it, as lm-eval places them.
   */
  description?: string;
  /** Optional (issue 10). Encoded image files (PNG/JPEG...) the context refers to, in order; vision models only. */
  images?: Uint8Array[];
}

/** Generation: the prompt, where to stop, and the reference answer the scorer compares against. */
export interface GenerationPrompt {
  prompt: string;
  until: string[];
  maxTokens: number;
  target: string;
  /** Optional (issue 10). Encoded image files (PNG/JPEG...) the prompt refers to, in order; vision models only. */
  images?: Uint8Array[];
}

export interface Task<D = unknown> {
  readonly name: string;
  readonly suite: SuiteName;
  /** Protocols this task supports; the first is the default. */
  readonly protocols: readonly Protocol[];
  /** Metric names this task reports per protocol, e.g. { loglikelihood: ['acc', 'acc_norm'] }. */
  readonly metrics: Partial<Record<Protocol, readonly string[]>>;
  load(options: TaskLoadOptions): Promise<LoadOutcome<D>>;
  docId(doc: D): string;
  /** Required when protocols include 'loglikelihood'. */
  multipleChoice?(doc: D): MultipleChoice;
  /** Required when protocols include 'generation'. */
  generation?(doc: D): GenerationPrompt;
  /** Per-sample metrics of a generated response (extraction as LLM-Adapters' evaluation does it). */
  scoreGeneration?(doc: D, response: string): Record<string, number>;
}
