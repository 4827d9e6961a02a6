// What every chart spec shares: the schema URL (so editors and validators know the version) and
// a plain type. Specs carry their data inline: a report directory or a published leaderboard
// must render without fetching anything.
import type { TopLevelSpec } from 'vega-lite';

export const VEGA_LITE_SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

export interface NamedChart {
  /** File stem: `<name>.vl.json`, `<name>.svg`, `<name>.png`. */
  name: string;
  title: string;
  spec: TopLevelSpec;
}

/** Config label used as the colour/offset field: "tiny-llama-3.1 + lora", "tiny-llama-2 (base)". */
export function configLabel(model: string, peft: string | null): string {
  return peft === null ? `${model} (base)` : `${model} + ${peft}`;
}

/**
 * Labels for a multi-run chart: a config that appears in several runs gets the run id appended,
 * otherwise two runs' bars for the same config would land on one spot and stack into a sum.
 */
export function configLabeler(runs: readonly { run_id: string; configs: readonly { key: string }[] }[]) {
  const runsOf = new Map<string, Set<string>>();
  for (const r of runs) for (const c of r.configs) runsOf.set(c.key, (runsOf.get(c.key) ?? new Set()).add(r.run_id));
  return (runId: string, c: { key: string; model: string; peft: string | null }, base = configLabel(c.model, c.peft)): string =>
    (runsOf.get(c.key)?.size ?? 0) > 1 ? `${base} [${runId}]` : base;
}
