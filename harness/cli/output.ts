// Output helpers: a human table (cli-table3) or one JSON document for machines.
import Table from 'cli-table3';
import type { CliIO } from './command.ts';

export function printJson(io: CliIO, value: unknown): void {
  io.out(`${JSON.stringify(value, null, 2)}\n`);
}

export function printTable(io: CliIO, head: string[], rows: (string | number)[][]): void {
  const table = new Table({ head, style: { head: [], border: [] }, chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' } });
  for (const row of rows) table.push(row.map(String));
  io.out(`${table.toString()}\n`);
}

/** 8030261248 -> "8.03B"; small counts stay exact. */
export function humanCount(n: number): string {
  if (n >= 1e12) return `${(n / 1e12).toFixed(2)}T`;
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

/** Bytes as GiB with two decimals (what nvidia-smi and most trainers print). */
export function humanBytes(n: number): string {
  const gib = n / 2 ** 30;
  if (gib >= 0.1) return `${gib.toFixed(2)} GiB`;
  return `${(n / 2 ** 20).toFixed(2)} MiB`;
}

/** Exact integer with thousands separators, for tables where exactness is the point. */
export function exactCount(n: number): string {
  return n.toLocaleString('en-US');
}
