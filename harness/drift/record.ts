// DriftStats -> a `drift` record (results/schema.ts), the one figure set reports and the history
// store read.
import type { DriftStats } from '../../reports/drift.ts';
import type { DriftRecord } from '../../results/schema.ts';

export interface DriftIdentity {
  runId: string;
  model: string;
  /** peftLabel of the adapted side's PEFT, as metric records name the config; null for none. */
  peft: string | null;
  against: string;
  backend: string;
  data: string;
}

/** `<model>/<peft|base>/drift`: the planner's cell-id shape, so reports place it in the config's column. */
export function driftCellId(model: string, peft: string | null): string {
  const segment = (s: string) => s.replace(/[/\\\s]+/g, '_');
  return `${segment(model)}/${peft === null ? 'base' : segment(peft)}/drift`;
}

export function driftRecord(id: DriftIdentity, stats: DriftStats, time = new Date().toISOString()): DriftRecord {
  return {
    kind: 'drift',
    run_id: id.runId,
    cell_id: driftCellId(id.model, id.peft),
    time,
    model: id.model,
    peft: id.peft,
    against: id.against,
    backend: id.backend,
    data: id.data,
    n_tokens: stats.positions,
    kl_mean: stats.kl_mean.value,
    kl_stderr: stats.kl_mean.stderr,
    kl_median: stats.kl_median,
    kl_p99: stats.kl_p99,
    kl_max: stats.kl_max,
    top1_agreement: stats.top1_agreement.value,
    top1_stderr: stats.top1_agreement.stderr,
    ppl_base: stats.ppl_base,
    ppl_adapted: stats.ppl_adapted,
    ppl_ratio: stats.ppl_ratio.value,
    ppl_ratio_stderr: stats.ppl_ratio.stderr,
    delta_p_rms: stats.delta_p_rms,
  };
}
