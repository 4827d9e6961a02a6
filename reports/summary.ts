// records -> RunSummary: the one pass every report starts from. Pure: no I/O here.
import type { ManifestRecord, RunRecord } from '../results/schema.ts';
import { cellIdentities, configKey, llamaVersion, type CellIdentity } from './cells.ts';
import {
  RESULTS_SCHEMA_ID, type ConfigSummary, type DriftRow, type KernelRow, type RunSummary, type TaskScore,
} from './summary-types.ts';

function emptyConfig(model: string, peft: string | null): ConfigSummary {
  return {
    key: configKey(model, peft), model, version: llamaVersion(model), peft,
    scores: [], failures: [],
    total_params: null, trainable_params: null, peak_rss_bytes: null, device_bytes: null,
    prefill_tokens_per_s: null, decode_tokens_per_s: null,
  };
}

/** max over cells, ignoring nulls: a config's peak is its worst cell. */
const maxOf = (a: number | null, b: number | null | undefined): number | null =>
  b === null || b === undefined ? a : a === null ? b : Math.max(a, b);

export function summarizeRun(records: readonly RunRecord[], problems: readonly string[] = []): RunSummary {
  const manifest = records.find((r): r is ManifestRecord => r.kind === 'manifest');
  const cells = cellIdentities(records);
  const configs = new Map<string, ConfigSummary>();
  const configOf = (id: CellIdentity): ConfigSummary => {
    const key = configKey(id.model, id.peft);
    let c = configs.get(key);
    if (!c) configs.set(key, (c = emptyConfig(id.model, id.peft)));
    return c;
  };
  // A re-run or resumed cell may write a metric again; the last record wins, in task order of
  // first appearance.
  const scores = new Map<string, Map<string, TaskScore>>();
  const kernels: KernelRow[] = [];
  // A measurement repeated (same config, reference side, backend and text) keeps its last record.
  const drift = new Map<string, DriftRow>();
  for (const r of records) {
    if (r.kind === 'manifest') continue;
    if (r.kind === 'kernel') {
      const { kernel, variant, backend, device, shape, dtype, median_ms, gflops, gbps, bound, roofline_fraction } = r;
      kernels.push({ kernel, variant, backend, device, shape, dtype, median_ms, gflops, gbps, bound, roofline_fraction });
      continue;
    }
    if (r.kind === 'drift') {
      const c = configOf({ model: r.model, peft: r.peft, task: null });
      const { model, peft, against, backend, data, n_tokens, kl_mean, kl_stderr, kl_p99, kl_max, top1_agreement, top1_stderr, ppl_ratio, ppl_ratio_stderr } = r;
      drift.set([c.key, against, backend, data].join('\u0000'), {
        key: c.key, model, peft, against, backend, data, n_tokens, kl_mean, kl_stderr, kl_p99, kl_max, top1_agreement, top1_stderr, ppl_ratio, ppl_ratio_stderr,
      });
      continue;
    }
    const id = cells.get(r.cell_id);
    if (!id) continue;
    const c = configOf(id);
    switch (r.kind) {
      case 'metric': {
        const byKey = scores.get(c.key) ?? new Map<string, TaskScore>();
        scores.set(c.key, byKey);
        byKey.set(`${r.task}\u0000${r.metric}`, { task: r.task, metric: r.metric, value: r.value, stderr: r.stderr, n: r.n });
        break;
      }
      case 'params':
        c.total_params = r.total_params;
        c.trainable_params = r.trainable_params;
        break;
      case 'memory':
        c.peak_rss_bytes = maxOf(c.peak_rss_bytes, r.peak_rss_bytes);
        c.device_bytes = maxOf(c.device_bytes, r.device_bytes);
        break;
      case 'throughput':
        // The slowest cell is what a user of the config should expect.
        c.prefill_tokens_per_s = r.prefill_tokens_per_s === null ? c.prefill_tokens_per_s
          : c.prefill_tokens_per_s === null ? r.prefill_tokens_per_s : Math.min(c.prefill_tokens_per_s, r.prefill_tokens_per_s);
        c.decode_tokens_per_s = r.decode_tokens_per_s === null ? c.decode_tokens_per_s
          : c.decode_tokens_per_s === null ? r.decode_tokens_per_s : Math.min(c.decode_tokens_per_s, r.decode_tokens_per_s);
        break;
      case 'error':
        c.failures.push({ cell_id: r.cell_id, task: r.task ?? id.task, stage: r.stage ?? null, message: r.message });
        break;
      default:
        break; // samples feed compare/regress and samples.csv, not the summary
    }
  }
  for (const c of configs.values()) c.scores = [...(scores.get(c.key)?.values() ?? [])];
  return {
    schema: RESULTS_SCHEMA_ID,
    run_id: manifest?.run_id ?? records[0]?.run_id ?? 'unknown',
    time: manifest?.time ?? null,
    git_sha: manifest?.git_sha ?? null,
    package_version: manifest?.package_version ?? null,
    data_files: (manifest?.files ?? []).filter((f) => f.role === 'data').map((f) => ({ path: f.path, sha256: f.sha256 })),
    configs: [...configs.values()],
    kernels,
    drift: [...drift.values()],
    problems: [...problems],
  };
}

export type TaskStatus =
  | { status: 'ok'; score: TaskScore }
  | { status: 'failed'; message: string }
  | { status: 'missing' };

/**
 * A task's state in a config. Any failed cell makes the task failed even if another shard
 * scored: a partial score is not comparable with a complete one, and must never read as a
 * number (nor as a zero) in a table, a chart or a verdict.
 */
export function taskStatus(config: ConfigSummary, task: string, score: TaskScore | undefined): TaskStatus {
  const failure = config.failures.find((f) => f.task === task) ?? config.failures.find((f) => f.task === null);
  if (failure) return { status: 'failed', message: failure.message };
  return score ? { status: 'ok', score } : { status: 'missing' };
}
