// JUnit XML for CI test reporters (GitHub, GitLab, Jenkins): one testcase per task so a
// regression shows up as a named failing test, not as one opaque red job.
import type { RegressResult } from './regress.ts';

export function xmlEscape(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c] ?? c)
    // XML 1.0 forbids most control characters even when escaped.
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');
}

export function regressJunit(result: RegressResult): string {
  const failures = result.verdicts.filter((v) => v.status !== 'pass').length;
  const cases = result.verdicts.map((v) => {
    const attrs = `classname="${xmlEscape(`llama-eval.${v.config}`)}" name="${xmlEscape(v.task)}" time="0"`;
    const detail = `${v.metric}: baseline ${v.baseline ?? '–'}, current ${v.current ?? '–'}; ${v.reason}`;
    if (v.status === 'pass') return `    <testcase ${attrs}><system-out>${xmlEscape(detail)}</system-out></testcase>`;
    const type = v.status === 'regression' ? 'regression' : v.status;
    return `    <testcase ${attrs}>\n      <failure message="${xmlEscape(`${v.status}: ${v.reason}`)}" type="${type}">${xmlEscape(detail)}</failure>\n    </testcase>`;
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="llama-eval regress" tests="${result.verdicts.length}" failures="${failures}">`,
    `  <testsuite name="regress ${xmlEscape(result.current)} vs ${xmlEscape(result.baseline)}" tests="${result.verdicts.length}" failures="${failures}" errors="0" skipped="0">`,
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}
