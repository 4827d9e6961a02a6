// Shared by the report commands: reports/ throws ReportInputError (it may not import harness),
// and a bad run dir or results.json is the user's input, so it becomes InputError (exit 2).
import { ReportInputError } from '../../reports/errors.ts';
import { InputError } from '../errors.ts';

export async function asInputErrors<T>(work: () => T | Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    if (e instanceof ReportInputError) throw new InputError(e.message);
    throw e;
  }
}

/** Options parsed as numbers, refused with a message naming the flag when out of range. */
export function numberInRange(args: Record<string, unknown>, flag: string, min: number, max: number): number {
  const v = Number(args[flag]);
  if (!Number.isFinite(v) || v < min || v > max) {
    throw new InputError(`--${flag} must be a number in [${min}, ${max}], got ${String(args[flag])}`);
  }
  return v;
}
