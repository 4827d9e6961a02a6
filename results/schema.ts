// Record schema: the single source of truth for what a run writes to records.jsonl.
// Field names are snake_case because the JSONL is a contract read by reports, scripts and
// other languages, not just by this codebase. Objects are strict so a typo in a writer
// (`stdder`) fails loudly instead of silently producing a record reports cannot read;
// only the free-form payloads (config, peft, target, response) accept anything.
import { z } from 'zod';

/** Every kind a record may have, in the order DESIGN.md lists them. */
export const RECORD_KINDS = [
  'manifest', 'sample', 'metric', 'params', 'memory', 'throughput', 'kernel', 'error', 'drift',
] as const;
export type RecordKind = (typeof RECORD_KINDS)[number];

// z.number() already rejects NaN/Infinity (JSON cannot carry them); .int() also bounds to
// safe integers, which covers parameter counts up to 2e12 and byte counts up to 8 PiB.
const count = z.number().int().nonnegative();
const nonneg = z.number().nonnegative();
const text = z.string().min(1);
// z.unknown() alone lets a missing key through; free-form fields that must be present
// (a sample's target, a params record's peft) use this instead. null is a value here.
const present = z.unknown().refine((v) => v !== undefined, { message: 'Required' });

const common = {
  run_id: text,
  cell_id: text, // the manifest, which describes the whole run, uses "run"
  time: z.iso.datetime({ offset: true }),
};

export const ManifestRecordSchema = z.strictObject({
  kind: z.literal('manifest'),
  ...common,
  package_version: text,
  // "-dirty" marks a working tree with uncommitted changes: the sha alone would overclaim.
  git_sha: z.string().regex(/^[0-9a-f]{7,64}(-dirty)?$/, 'expected a hex git sha').nullable(),
  node_version: text,
  ort_version: text.nullable(),
  host: z.strictObject({
    platform: text,
    arch: text,
    cpus: count,
    cpu_model: z.string(),
    total_memory_bytes: count,
    gpus: z.array(z.string()),
  }),
  seed: z.number().int(),
  files: z.array(z.strictObject({
    role: z.enum(['model', 'adapter', 'data', 'other']),
    path: text,
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits'),
  })),
  config: z.record(z.string(), z.unknown()),
});

export const SampleRecordSchema = z.strictObject({
  kind: z.literal('sample'),
  ...common,
  task: text,
  doc_id: z.union([text, count]),
  prompt_hash: text,
  target: present,
  response: z.unknown().optional(),
  loglikelihoods: z.array(z.number()).optional(),
  metrics: z.record(z.string(), z.number()),
});

export const MetricRecordSchema = z.strictObject({
  kind: z.literal('metric'),
  ...common,
  task: text,
  metric: text,
  value: z.number(),
  stderr: nonneg.nullable(),
  n: count,
  model: text,
  peft: text.nullable(),
});

export const ParamsRecordSchema = z.strictObject({
  kind: z.literal('params'),
  ...common,
  model: text,
  total_params: count,
  active_params: count,
  embedding_params: count,
  trainable_params: count,
  vision_params: count.optional(),
  peft: present,
  components: z.record(z.string(), count),
});

export const MemoryRecordSchema = z.strictObject({
  kind: z.literal('memory'),
  ...common,
  // Measured values are whole bytes; null where the backend cannot report them.
  peak_rss_bytes: count,
  arena_bytes: count.nullable(),
  kv_cache_bytes: count.nullable(),
  device_bytes: count.nullable(),
  // Estimates may be fractional (NF4 costs 4.127 bits per parameter), so not .int().
  weights_bytes: nonneg.optional(),
  activation_bytes: nonneg.optional(),
  gradient_bytes: nonneg.optional(),
  optimizer_bytes: nonneg.optional(),
  total_bytes: nonneg.optional(),
});

export const ThroughputRecordSchema = z.strictObject({
  kind: z.literal('throughput'),
  ...common,
  prefill_tokens_per_s: nonneg.nullable(),
  decode_tokens_per_s: nonneg.nullable(),
  tokens: count,
  seconds: nonneg,
});

export const KernelRecordSchema = z.strictObject({
  kind: z.literal('kernel'),
  ...common,
  kernel: text,
  variant: text,
  backend: text,
  device: text,
  shape: z.string().regex(/^\d+(x\d+)*$/, 'expected dimensions like "1x8192x8192"'),
  dtype: text,
  median_ms: nonneg,
  min_ms: nonneg,
  max_ms: nonneg,
  gflops: nonneg,
  gbps: nonneg,
  bound: z.enum(['memory', 'compute']),
  // Not capped at 1: timer noise can put a memory-bound kernel slightly above the roof.
  roofline_fraction: nonneg,
  device_ms: nonneg.nullable().optional(),
}).refine((r) => r.min_ms <= r.median_ms && r.median_ms <= r.max_ms, {
  message: 'expected min_ms <= median_ms <= max_ms',
  path: ['median_ms'],
});

export const ErrorRecordSchema = z.strictObject({
  kind: z.literal('error'),
  ...common,
  message: text,
  stack: z.string().optional(),
  task: text.optional(),
  stage: text.optional(),
});

// How far one model's next-token distributions moved from another's over the same tokens
// (`llama-eval drift`; the statistics of llama.cpp's `llama-perplexity --kl-divergence`).
// Stderrs are null below 11 positions, where llama.cpp prints 0 but nothing is known.
export const DriftRecordSchema = z.strictObject({
  kind: z.literal('drift'),
  ...common,
  model: text,
  /** The adapted side's PEFT (spec or adapter path); null for the bare model. */
  peft: text.nullable(),
  /** The reference side: "base", "nf4", "unmerged", "reference" (the float64 backend) or another PEFT. */
  against: text,
  backend: text,
  /** The text scored: a file path or a task name. */
  data: text,
  n_tokens: count,
  // KL is >= 0 in exact arithmetic, but two nearly equal rows can sum to -1e-17 in floating
  // point; that is a true measurement of "no drift", so it is not rejected.
  kl_mean: z.number(),
  kl_stderr: nonneg.nullable(),
  kl_median: z.number(),
  kl_p99: z.number(),
  kl_max: z.number(),
  top1_agreement: z.number().min(0).max(1),
  top1_stderr: nonneg.nullable(),
  ppl_base: nonneg,
  ppl_adapted: nonneg,
  ppl_ratio: nonneg,
  ppl_ratio_stderr: nonneg.nullable(),
  delta_p_rms: nonneg,
});

export const RecordSchema = z.discriminatedUnion('kind', [
  ManifestRecordSchema,
  SampleRecordSchema,
  MetricRecordSchema,
  ParamsRecordSchema,
  MemoryRecordSchema,
  ThroughputRecordSchema,
  KernelRecordSchema,
  ErrorRecordSchema,
  DriftRecordSchema,
]);

export type ManifestRecord = z.infer<typeof ManifestRecordSchema>;
export type SampleRecord = z.infer<typeof SampleRecordSchema>;
export type MetricRecord = z.infer<typeof MetricRecordSchema>;
export type ParamsRecord = z.infer<typeof ParamsRecordSchema>;
export type MemoryRecord = z.infer<typeof MemoryRecordSchema>;
export type ThroughputRecord = z.infer<typeof ThroughputRecordSchema>;
export type KernelRecord = z.infer<typeof KernelRecordSchema>;
export type ErrorRecord = z.infer<typeof ErrorRecordSchema>;
export type DriftRecord = z.infer<typeof DriftRecordSchema>;
export type RunRecord = z.infer<typeof RecordSchema>;

/** One line per zod issue, `path: message`, so the offending field is named in the error. */
export function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : '(record)'}: ${i.message}`)
    .join('; ');
}

export type RecordCheck = { ok: true; record: RunRecord } | { ok: false; message: string };

/** Validates without throwing; the message names the kind and every bad field path. */
export function checkRecord(value: unknown): RecordCheck {
  const r = RecordSchema.safeParse(value);
  if (r.success) return { ok: true, record: r.data };
  const kind = typeof value === 'object' && value !== null && 'kind' in value ? String(value.kind) : '?';
  return { ok: false, message: `invalid ${kind} record: ${formatIssues(r.error)}` };
}

/** Validates or throws an Error naming the kind and the bad field paths. */
export function parseRecord(value: unknown): RunRecord {
  const r = checkRecord(value);
  if (!r.ok) throw new Error(r.message);
  return r.record;
}
