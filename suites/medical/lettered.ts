// Four-option letter questions (MedQA, MedMCQA, MMLU): the documents keep the four option texts and the
// gold index; each task's prompt lists them as "A. text" lines and scores the letters A-D.
import { rowError, type LocatedRow } from '../load/formats.ts';
import { LETTERS } from '../multiple-choice.ts';

export interface LetteredDoc {
  id: string;
  question: string;
  options: [string, string, string, string];
  gold: number;
}

export const ABCD = LETTERS.slice(0, 4);

/** "A. a\nB. b\nC. c\nD. d\n" as lm-eval's medqa/medmcqa/mmlu templates write them. */
export function letteredLines(options: readonly string[]): string {
  return options.map((o, i) => `${LETTERS[i]}. ${o}\n`).join('');
}

/** An `options` object {A..D: text} (MedQA / MedAgentsBench JSONL). */
export function optionsObject(r: LocatedRow): [string, string, string, string] {
  const o = r.row.options;
  if (typeof o !== 'object' || o === null) throw rowError(r.where, 'field "options" missing or not an object A-D -> text');
  const rec = o as Record<string, unknown>;
  const keys = Object.keys(rec);
  if (keys.length !== 4 || !ABCD.every((k) => typeof rec[k] === 'string')) {
    throw rowError(r.where, `expected exactly 4 options A-D, got ${keys.join(',') || 'none'}`);
  }
  return ABCD.map((k) => rec[k] as string) as [string, string, string, string];
}

export function letterIndex(r: LocatedRow, letter: unknown, field: string): number {
  const i = typeof letter === 'string' ? ABCD.indexOf(letter as (typeof ABCD)[number]) : -1;
  if (i < 0) throw rowError(r.where, `field "${field}" is ${JSON.stringify(letter)}, expected a letter A-D`);
  return i;
}

export function goldInRange(r: LocatedRow, gold: number, field: string): number {
  if (!Number.isInteger(gold) || gold < 0 || gold > 3) throw rowError(r.where, `field "${field}" is ${gold}, expected 0-3`);
  return gold;
}
