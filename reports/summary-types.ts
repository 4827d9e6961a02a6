// The summary of one run: what results.json holds, what every report is drawn from, and what a
// regress baseline may be given as. A zod schema because results.json is read back as input.
import { z } from 'zod';

export const RESULTS_SCHEMA_ID = 'llama-eval.results/1';

const num = z.number();

export const TaskScoreSchema = z.strictObject({
  task: z.string(),
  metric: z.string(),
  value: num,
  stderr: num.nullable(),
  n: z.number().int().nonnegative(),
});

export const CellFailureSchema = z.strictObject({
  cell_id: z.string(),
  /** null when the error record names no task and the cell id does not either. */
  task: z.string().nullable(),
  stage: z.string().nullable(),
  message: z.string(),
});

export const ConfigSummarySchema = z.strictObject({
  /** `<model>/<peft|base>`: the identity used to pair configs across runs. */
  key: z.string(),
  model: z.string(),
  version: z.string().nullable(),
  peft: z.string().nullable(),
  scores: z.array(TaskScoreSchema),
  failures: z.array(CellFailureSchema),
  total_params: num.nullable(),
  trainable_params: num.nullable(),
  peak_rss_bytes: num.nullable(),
  device_bytes: num.nullable(),
  prefill_tokens_per_s: num.nullable(),
  decode_tokens_per_s: num.nullable(),
});

export const KernelRowSchema = z.strictObject({
  kernel: z.string(),
  variant: z.string(),
  backend: z.string(),
  device: z.string(),
  shape: z.string(),
  dtype: z.string(),
  median_ms: num,
  gflops: num,
  gbps: num,
  bound: z.enum(['memory', 'compute']),
  roofline_fraction: num,
});

/** One `drift` record (llama-eval drift) under its config: how far the config moved from `against`. */
export const DriftRowSchema = z.strictObject({
  /** The config key (`<model>/<peft|base>`), to put drift beside that config's scores. */
  key: z.string(),
  model: z.string(),
  peft: z.string().nullable(),
  against: z.string(),
  backend: z.string(),
  data: z.string(),
  n_tokens: z.number().int().nonnegative(),
  kl_mean: num,
  kl_stderr: num.nullable(),
  kl_p99: num,
  kl_max: num,
  top1_agreement: num,
  top1_stderr: num.nullable(),
  ppl_ratio: num,
  ppl_ratio_stderr: num.nullable(),
});

export const RunSummarySchema = z.strictObject({
  schema: z.literal(RESULTS_SCHEMA_ID),
  run_id: z.string(),
  time: z.string().nullable(),
  git_sha: z.string().nullable(),
  package_version: z.string().nullable(),
  /** Data files from the manifest: compare and regress refuse runs whose hashes differ. */
  data_files: z.array(z.strictObject({ path: z.string(), sha256: z.string() })),
  configs: z.array(ConfigSummarySchema),
  kernels: z.array(KernelRowSchema),
  /** Absent in results.json written before drift records existed. */
  drift: z.array(DriftRowSchema).optional(),
  /** records.jsonl lines that were skipped, so a summary never hides a damaged file. */
  problems: z.array(z.string()),
});

export type TaskScore = z.infer<typeof TaskScoreSchema>;
export type CellFailure = z.infer<typeof CellFailureSchema>;
export type ConfigSummary = z.infer<typeof ConfigSummarySchema>;
export type KernelRow = z.infer<typeof KernelRowSchema>;
export type DriftRow = z.infer<typeof DriftRowSchema>;
export type RunSummary = z.infer<typeof RunSummarySchema>;
