// `llama-eval regress`: the nightly gate. Exit 1 on regression (or a failed/missing task), 0
// otherwise, 2 when the runs cannot be compared. The markdown goes to stdout as well, so a CI
// step can append it to $GITHUB_STEP_SUMMARY.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { regressJunit } from '../../reports/junit.ts';
import { regress } from '../../reports/regress.ts';
import { regressMarkdown } from '../../reports/regress-md.ts';
import { openRunView } from '../../reports/view.ts';
import type { CliIO } from './command.ts';
import { asInputErrors, numberInRange } from './report-input.ts';

export async function run(args: Record<string, unknown>, io: CliIO): Promise<number> {
  const maxDrop = numberInRange(args, 'max-drop', 0, 1e9);
  const alpha = numberInRange(args, 'alpha', 1e-9, 0.5);
  let baseline = String(args.baseline);
  if (baseline === 'last-green') {
    // Imported here: the store loads DuckDB's native binding, which a plain regress never needs.
    const { lastGreenRun } = await import('../history/select.ts');
    const { defaultHistoryPath } = await import('../history/store.ts');
    const db = typeof args.db === 'string' ? args.db : defaultHistoryPath();
    const found = await asInputErrors(() => lastGreenRun(db, String(args.current)));
    io.out(`baseline last-green: run ${found.run_id} (${found.source})\n\n`);
    baseline = found.source;
  }
  const result = await asInputErrors(() =>
    regress(openRunView(baseline, true), openRunView(String(args.current)), { maxDrop, alpha, metric: String(args.metric) }));
  const out = String(args.out);
  const junitPath = typeof args.junit === 'string' ? args.junit : join(out, 'junit.xml');
  const md = regressMarkdown(result);
  mkdirSync(out, { recursive: true });
  mkdirSync(dirname(junitPath), { recursive: true });
  writeFileSync(join(out, 'regress.md'), md);
  writeFileSync(join(out, 'regress.json'), `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(junitPath, regressJunit(result));
  io.out(md);
  return result.regressed ? 1 : 0;
}
