// The report commands as main.ts would run them, until they are registered there: the same
// yargs setup (strict, exitProcess off, fail -> exit 2) and the same InputError -> 2 mapping.
// `dryRun` parses and validates flags without running the command (the workflow test uses it).
import yargs, { type Argv } from 'yargs';
import { COMPARE_COMMAND } from '../../harness/cli/compare-args.ts';
import type { CommandSpec } from '../../harness/cli/command.ts';
import { LEADERBOARD_COMMAND } from '../../harness/cli/leaderboard-args.ts';
import { REGRESS_COMMAND } from '../../harness/cli/regress-args.ts';
import { REPORT_COMMAND } from '../../harness/cli/report-args.ts';
import { isInputError } from '../../harness/errors.ts';

export const REPORT_COMMANDS: CommandSpec[] = [REPORT_COMMAND, COMPARE_COMMAND, REGRESS_COMMAND, LEADERBOARD_COMMAND];

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

export async function runCli(argv: string[], commands: CommandSpec[] = REPORT_COMMANDS, dryRun = false): Promise<CliResult> {
  let out = '';
  let err = '';
  const io = { out: (s: string) => void (out += s), err: (s: string) => void (err += s) };
  let code = 0;
  let usage: string | null = null;
  let parser: Argv = yargs(argv).scriptName('llama-eval').strict().demandCommand(1).exitProcess(false)
    .fail((msg, error) => {
      if (error) throw error;
      usage = msg;
    });
  for (const c of commands) {
    parser = parser.command(c.name, c.describe, c.builder, async (args) => {
      if (!dryRun) code = await (await c.load()).run(args as Record<string, unknown>, io);
    });
  }
  try {
    await parser.parseAsync(argv, {}, () => undefined);
  } catch (e) {
    if (isInputError(e)) return { code: 2, out, err: `${err}llama-eval: ${e.message}\n` };
    throw e;
  }
  if (usage !== null) return { code: 2, out, err: `${err}llama-eval: ${usage}\n` };
  return { code, out, err };
}
