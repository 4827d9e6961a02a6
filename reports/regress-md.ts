// regress.md: the verdict a person reads in a job summary or PR comment. Failures first.
import { fmtP, fmtSigned, mdTable } from './markdown.ts';
import type { RegressResult, TaskVerdict } from './regress.ts';

const ICON: Record<TaskVerdict['status'], string> = { pass: '✅ pass', regression: '❌ regression', failed: '❌ failed', missing: '❌ missing' };

export function regressMarkdown(r: RegressResult): string {
  const bad = r.verdicts.filter((v) => v.status !== 'pass');
  const head = r.regressed
    ? `**${bad.length} of ${r.verdicts.length} tasks regressed or failed:** ${bad.map((v) => `\`${v.task}\` (${v.config})`).join(', ')}`
    : `**No regression** across ${r.verdicts.length} tasks.`;
  const order = [...bad, ...r.verdicts.filter((v) => v.status === 'pass')];
  const rows = order.map((v) => [
    ICON[v.status], v.config, v.task, v.metric,
    v.baseline === null ? '–' : v.baseline.toFixed(4),
    v.current === null ? '–' : v.current.toFixed(4),
    v.drop === null ? '–' : fmtSigned(-v.drop),
    fmtP(v.pValue), v.test ?? '–', v.reason,
  ]);
  return [
    '# llama-eval regress',
    '',
    `Baseline \`${r.baseline}\` → current \`${r.current}\`. A regression is a drop of more than ${r.options.maxDrop} ` +
      `that is significant at α = ${r.options.alpha} (McNemar exact for 0/1 metrics, paired bootstrap otherwise, ` +
      'z-test on stderr for a results.json baseline). Failed or missing tasks fail the gate.',
    '',
    head,
    '',
    mdTable(['verdict', 'config', 'task', 'metric', 'baseline', 'current', 'change', 'p', 'test', 'why'], rows,
      ['l', 'l', 'l', 'l', 'r', 'r', 'r', 'r', 'l', 'l']),
    '',
  ].join('\n');
}
