// summary.md: the tables a person pastes into a PR: scores (task x config), resources, failures,
// kernels. Failed tasks read FAILED, never 0.
import { configLabel } from './charts/spec.ts';
import { primaryScore, tasksOf } from './metric-choice.ts';
import { FAILED, fmtBytes, fmtCount, fmtScore, mdTable } from './markdown.ts';
import { taskStatus } from './summary.ts';
import type { ConfigSummary, DriftRow, RunSummary } from './summary-types.ts';

function scoreTable(configs: readonly ConfigSummary[], metric: string): string {
  const tasks = tasksOf(configs.flatMap((c) => [...c.scores, ...c.failures]));
  const rows = tasks.map((task) => [task, ...configs.map((c) => {
    const s = taskStatus(c, task, primaryScore(c.scores, task, metric));
    if (s.status === 'failed') return FAILED;
    if (s.status === 'missing') return '–';
    return `${fmtScore(s.score.value, s.score.stderr)}${s.score.metric === metric ? '' : ` (${s.score.metric})`}`;
  })]);
  return mdTable(['task', ...configs.map((c) => configLabel(c.model, c.peft))], rows, ['l', ...configs.map(() => 'r' as const)]);
}

function resourceTable(configs: readonly ConfigSummary[]): string {
  return mdTable(
    ['config', 'version', 'total params', 'trainable params', 'peak RSS', 'device memory', 'prefill tok/s', 'decode tok/s'],
    configs.map((c) => [
      configLabel(c.model, c.peft), c.version ?? '–', fmtCount(c.total_params), fmtCount(c.trainable_params),
      fmtBytes(c.peak_rss_bytes), fmtBytes(c.device_bytes),
      c.prefill_tokens_per_s === null ? '–' : c.prefill_tokens_per_s.toFixed(1),
      c.decode_tokens_per_s === null ? '–' : c.decode_tokens_per_s.toFixed(1),
    ]),
    ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
}

const fmtKl = (x: number) => (x === 0 ? '0' : x.toExponential(2));

/**
 * Drift beside accuracy: each drift measurement with the scores of the same config, so a reader
 * sees what an adapter (or NF4, or a backend) cost in distribution shift next to what it bought.
 */
function driftTable(drift: readonly DriftRow[], configs: readonly ConfigSummary[], metric: string): string {
  return mdTable(
    ['config', 'against', 'backend', 'text', 'tokens', 'KL mean (nats)', 'KL p99', 'KL max', 'top-1 agreement', 'PPL ratio', `scores (${metric})`],
    drift.map((d) => {
      const c = configs.find((x) => x.key === d.key);
      const scores = c === undefined ? [] : tasksOf(c.scores).flatMap((task) => {
        const s = taskStatus(c, task, primaryScore(c.scores, task, metric));
        return s.status === 'ok' ? [`${task} ${s.score.value.toFixed(4)}`] : s.status === 'failed' ? [`${task} ${FAILED}`] : [];
      });
      return [
        configLabel(d.model, d.peft), d.against, d.backend, d.data, String(d.n_tokens),
        d.kl_stderr === null ? fmtKl(d.kl_mean) : `${fmtKl(d.kl_mean)} ± ${fmtKl(d.kl_stderr)}`,
        fmtKl(d.kl_p99), fmtKl(d.kl_max),
        d.top1_stderr === null ? d.top1_agreement.toFixed(4) : fmtScore(d.top1_agreement, d.top1_stderr),
        d.ppl_ratio_stderr === null ? d.ppl_ratio.toFixed(4) : fmtScore(d.ppl_ratio, d.ppl_ratio_stderr),
        scores.length === 0 ? '–' : scores.join(', '),
      ];
    }),
    ['l', 'l', 'l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
  );
}

export function runMarkdown(run: RunSummary, metric: string): string {
  const out = [`## Run \`${run.run_id}\``, ''];
  const meta = [run.time && `time ${run.time}`, run.git_sha && `git ${run.git_sha}`, run.package_version && `llama-eval ${run.package_version}`].filter(Boolean);
  if (meta.length > 0) out.push(meta.join(' · '), '');
  if (run.configs.length > 0) {
    out.push(`### Scores (${metric} where the task has it; ± stderr)`, '', scoreTable(run.configs, metric), '');
    out.push('### Parameters, memory, throughput', '', resourceTable(run.configs), '');
  }
  if ((run.drift ?? []).length > 0) {
    out.push('### Drift: KL(against || config) per token, beside the scores', '', driftTable(run.drift!, run.configs, metric), '');
  }
  const failures = run.configs.flatMap((c) => c.failures.map((f) => ({ ...f, config: configLabel(c.model, c.peft) })));
  if (failures.length > 0) {
    out.push(`### Failed cells (${failures.length})`, '');
    out.push(mdTable(['config', 'task', 'stage', 'cell', 'error'], failures.map((f) => [f.config, f.task ?? '–', f.stage ?? '–', f.cell_id, f.message])), '');
  }
  if (run.kernels.length > 0) {
    out.push('### Kernels', '');
    out.push(mdTable(['kernel', 'variant', 'backend', 'shape', 'dtype', 'median ms', 'GFLOP/s', 'GB/s', 'bound', 'roofline'],
      run.kernels.map((k) => [k.kernel, k.variant, k.backend, k.shape, k.dtype, k.median_ms.toFixed(3), k.gflops.toFixed(1), k.gbps.toFixed(1), k.bound, `${(k.roofline_fraction * 100).toFixed(1)}%`]),
      ['l', 'l', 'l', 'l', 'l', 'r', 'r', 'r', 'l', 'r']), '');
  }
  if (run.problems.length > 0) {
    out.push(`### Skipped record lines (${run.problems.length})`, '', ...run.problems.slice(0, 20).map((p) => `- ${p}`), '');
  }
  return out.join('\n');
}

export function summaryMarkdown(runs: readonly RunSummary[], metric: string, charts: readonly string[]): string {
  const out = ['# llama-eval report', ''];
  for (const run of runs) out.push(runMarkdown(run, metric));
  if (charts.length > 0) out.push('## Charts', '', ...charts.map((c) => `![${c}](${c}.svg)`), '');
  return out.join('\n');
}
