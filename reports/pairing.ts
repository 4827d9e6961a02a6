// Lining two runs up: the same data, the same configs, the same items. Compare and regress both
// start here, so "these runs cannot be compared" reads the same from either command.
import type { RunRecord } from '../results/schema.ts';
import { cellIdentities, configKey } from './cells.ts';
import { ReportInputError } from './errors.ts';
import type { ConfigSummary, RunSummary } from './summary-types.ts';

/** A run as compare/regress see it: its summary, and its records when it came from a run dir. */
export interface RunView {
  /** What the user passed: a run dir or a results.json path. */
  source: string;
  summary: RunSummary;
  /** null for a results.json baseline: scores with stderr, but no per-item samples. */
  records: readonly RunRecord[] | null;
}

const short = (sha: string) => sha.slice(0, 12);

/** Throws naming every data file whose sha256 differs between the runs (matched by path). */
export function assertSameData(a: RunView, b: RunView): void {
  const bFiles = new Map(b.summary.data_files.map((f) => [f.path, f.sha256]));
  const differing = a.summary.data_files
    .filter((f) => bFiles.has(f.path) && bFiles.get(f.path) !== f.sha256)
    .map((f) => `${f.path} (sha256 ${short(f.sha256)}… in ${a.source}, ${short(bFiles.get(f.path) ?? '')}… in ${b.source})`);
  if (differing.length > 0) {
    throw new ReportInputError(
      `refusing to compare runs scored on different task data: ${differing.join('; ')}. ` +
        'Re-run both on the same data files (the manifest records their hashes).',
    );
  }
}

export interface ConfigPairing {
  pairs: [ConfigSummary, ConfigSummary][];
  onlyA: ConfigSummary[];
  onlyB: ConfigSummary[];
}

/**
 * Configs with the same `<model>/<peft>` pair up (the nightly case: same plan, new code). Two
 * runs of one config each pair whatever their names (the adapter-vs-adapter case). Anything
 * else is ambiguous and refused rather than guessed.
 */
export function pairConfigs(a: RunView, b: RunView): ConfigPairing {
  const ca = a.summary.configs;
  const cb = b.summary.configs;
  const [onlyA0, onlyB0] = [ca[0], cb[0]];
  if (ca.length === 1 && cb.length === 1 && onlyA0 && onlyB0) return { pairs: [[onlyA0, onlyB0]], onlyA: [], onlyB: [] };
  const byKey = new Map(cb.map((c) => [c.key, c]));
  const pairs: [ConfigSummary, ConfigSummary][] = [];
  for (const c of ca) {
    const other = byKey.get(c.key);
    if (other) pairs.push([c, other]);
  }
  if (pairs.length === 0) {
    throw new ReportInputError(
      `no config appears in both runs: ${a.source} has ${ca.map((c) => c.key).join(', ') || 'none'}; ` +
        `${b.source} has ${cb.map((c) => c.key).join(', ') || 'none'}. Pair runs of the same model/peft, or runs of one config each.`,
    );
  }
  const paired = new Set(pairs.map(([x]) => x.key));
  return { pairs, onlyA: ca.filter((c) => !paired.has(c.key)), onlyB: cb.filter((c) => !paired.has(c.key)) };
}

// Called once per (config, task): computing identities once per run keeps that linear.
const identityCache = new WeakMap<readonly RunRecord[], ReturnType<typeof cellIdentities>>();
function identitiesOf(records: readonly RunRecord[]): ReturnType<typeof cellIdentities> {
  let ids = identityCache.get(records);
  if (!ids) identityCache.set(records, (ids = cellIdentities(records)));
  return ids;
}

/** doc_id -> the sample's value of `metric`, for one config and task; later records win. */
export function sampleValues(records: readonly RunRecord[], config: ConfigSummary, task: string, metric: string): Map<string, number> {
  const cells = identitiesOf(records);
  const out = new Map<string, number>();
  for (const r of records) {
    if (r.kind !== 'sample' || r.task !== task) continue;
    const id = cells.get(r.cell_id);
    if (!id || configKey(id.model, id.peft) !== config.key) continue;
    const v = r.metrics[metric];
    if (v !== undefined) out.set(String(r.doc_id), v);
  }
  return out;
}
