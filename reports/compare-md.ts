// compare.md / stdout: per task the difference, the paired test and the flipped items.
import type { CompareResult } from './compare.ts';
import { fmtP, fmtSigned, mdTable } from './markdown.ts';

/** Flipped items listed per task in markdown; the JSON output has all of them. */
const MAX_FLIPS_SHOWN = 20;

export function compareMarkdown(r: CompareResult): string {
  const out = ['# llama-eval compare', '', `A = \`${r.a}\`, B = \`${r.b}\`; differences are B − A; significant at α = ${r.alpha}.`, ''];
  for (const c of r.configs) {
    out.push(`## ${c.a} vs ${c.b}`, '');
    out.push(mdTable(
      ['task', 'metric', 'A', 'B', 'B − A', 'test', 'p', '95% CI / discordant', 'n', ''],
      c.tasks.map((t) => [
        t.task, t.metric,
        t.a === null ? (t.status === 'failed' ? 'FAILED' : '–') : t.a.toFixed(4),
        t.b === null ? (t.status === 'failed' ? 'FAILED' : '–') : t.b.toFixed(4),
        t.diff === null ? '–' : fmtSigned(t.diff),
        t.test?.test ?? '–', fmtP(t.test?.pValue ?? null),
        t.test?.ci ? `[${fmtSigned(t.test.ci[0])}, ${fmtSigned(t.test.ci[1])}]`
          : t.test?.discordant ? `A✓B✗ ${t.test.discordant.b}, A✗B✓ ${t.test.discordant.c}` : '–',
        t.test ? String(t.test.n) : '–',
        t.note ?? (t.significant ? 'significant' : ''),
      ]),
      ['l', 'l', 'r', 'r', 'r', 'l', 'r', 'l', 'r', 'l'],
    ));
    out.push('');
    for (const t of c.tasks) {
      const flips = t.test?.flipped ?? [];
      if (flips.length === 0) continue;
      const shown = flips.slice(0, MAX_FLIPS_SHOWN).map((f) => `\`${f.doc_id}\` ${f.a}→${f.b}`).join(', ');
      const more = flips.length > MAX_FLIPS_SHOWN ? ` … and ${flips.length - MAX_FLIPS_SHOWN} more (see --json)` : '';
      out.push(`- **${t.task}**: ${flips.length} flipped: ${shown}${more}`);
    }
    out.push('');
  }
  return out.join('\n');
}
