// GitHub-flavoured markdown tables and the number formats every report shares.

/** Escapes the characters that would break a table cell. */
export function mdCell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

export function mdTable(head: readonly string[], rows: readonly (readonly string[])[], align?: readonly ('l' | 'r')[]): string {
  const sep = head.map((_, i) => (align?.[i] === 'r' ? '---:' : '---'));
  const line = (cells: readonly string[]) => `| ${cells.map(mdCell).join(' | ')} |`;
  return [line(head), line(sep), ...rows.map(line)].join('\n');
}

/** A score as people read it: 0.7312 ± 0.0140 (4 decimals: one item in 10,000). */
export function fmtScore(value: number, stderr: number | null): string {
  return stderr === null ? value.toFixed(4) : `${value.toFixed(4)} ± ${stderr.toFixed(4)}`;
}

export function fmtSigned(x: number): string {
  return `${x >= 0 ? '+' : ''}${x.toFixed(4)}`;
}

export function fmtP(p: number | null): string {
  if (p === null) return '–';
  return p < 1e-4 ? p.toExponential(1) : p.toPrecision(3);
}

export function fmtCount(n: number | null): string {
  if (n === null) return '–';
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

export function fmtBytes(n: number | null): string {
  if (n === null) return '–';
  const gib = n / 2 ** 30;
  return gib >= 0.1 ? `${gib.toFixed(2)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`;
}

export const FAILED = 'FAILED';
