// `llama-eval compare`: two runs on the same items. Exit 0 whatever the result (it informs;
// `regress` is the gate), 2 when the runs cannot be compared.
import { join } from 'node:path';
import { mkdirSync, writeFileSync } from 'node:fs';
import { compareRuns } from '../../reports/compare.ts';
import { compareMarkdown } from '../../reports/compare-md.ts';
import { openRunView } from '../../reports/view.ts';
import type { CliIO } from './command.ts';
import { printJson } from './output.ts';
import { asInputErrors, numberInRange } from './report-input.ts';

export async function run(args: Record<string, unknown>, io: CliIO): Promise<number> {
  const alpha = numberInRange(args, 'alpha', 1e-9, 0.5);
  const resamples = Math.round(numberInRange(args, 'resamples', 100, 1e6));
  const result = await asInputErrors(() =>
    compareRuns(openRunView(String(args.a)), openRunView(String(args.b)), {
      metric: String(args.metric), alpha, resamples, seed: Number(args.seed),
    }));
  const md = compareMarkdown(result);
  if (typeof args.out === 'string') {
    mkdirSync(args.out, { recursive: true });
    writeFileSync(join(args.out, 'compare.md'), md);
    writeFileSync(join(args.out, 'compare.json'), `${JSON.stringify(result, null, 2)}\n`);
  }
  if (args.json) printJson(io, result);
  else io.out(md);
  return 0;
}
