// CLI entry: one yargs command per file in harness/cli/, each imported only when it runs so that
// `--help` stays instant. Handlers return exit codes; only bin/llama-eval.js sets the process's.
import yargs, { type Argv } from 'yargs';
import { isInputError } from '../errors.ts';
import { MODELS_COMMAND } from './models-args.ts';
import { PARAMS_COMMAND } from './params-args.ts';
import { MEMORY_COMMAND } from './memory-args.ts';
import { TOKENIZE_COMMAND } from './tokenize-args.ts';
import { LOGPROBS_COMMAND } from './logprobs-args.ts';
import { GENERATE_COMMAND } from './generate-args.ts';
import { EXPORT_COMMAND } from './export-args.ts';
import { QUANTIZE_COMMAND } from './quantize-args.ts';
import { SERVE_COMMAND } from './serve-args.ts';
import { BENCH_COMMAND } from './bench-args.ts';
import { REPORT_COMMAND } from './report-args.ts';
import { COMPARE_COMMAND } from './compare-args.ts';
import { REGRESS_COMMAND } from './regress-args.ts';
import { LEADERBOARD_COMMAND } from './leaderboard-args.ts';
import { HISTORY_COMMAND } from './history-args.ts';
import { DRIFT_COMMAND } from './drift-args.ts';
import { RUN_COMMAND } from './run-args.ts';
import { MERGE_COMMAND } from './merge-args.ts';
import type { CommandSpec } from './command.ts';

const COMMANDS: CommandSpec[] = [
  MODELS_COMMAND, PARAMS_COMMAND, MEMORY_COMMAND,
  TOKENIZE_COMMAND, LOGPROBS_COMMAND, GENERATE_COMMAND, EXPORT_COMMAND, QUANTIZE_COMMAND, SERVE_COMMAND,
  RUN_COMMAND, MERGE_COMMAND, BENCH_COMMAND,
  REPORT_COMMAND, COMPARE_COMMAND, REGRESS_COMMAND, LEADERBOARD_COMMAND,
  HISTORY_COMMAND, DRIFT_COMMAND,
];

export const EXIT = { ok: 0, threshold: 1, input: 2, internal: 3 } as const;

export async function main(argv: string[], io: { out: (s: string) => void; err: (s: string) => void } = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
}): Promise<number> {
  let exitCode: number = EXIT.ok;
  let usageError: string | null = null;
  let parser: Argv = yargs(argv)
    .scriptName('llama-eval')
    .usage('$0 <command> [options]\n\nBenchmark and evaluate LLaMA models (1 to 4) with PEFT methods: parameters, memory, speed, scores.')
    .strict()
    .demandCommand(1, 'Name a command (see the list above).')
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version()
    .wrap(Math.min(110, process.stdout.columns ?? 100))
    .exitProcess(false)
    .fail((msg, error) => {
      if (error) throw error;
      usageError = msg;
    })
    .epilogue('Exit codes: 0 ok, 1 regression/threshold failed, 2 usage or input error, 3 internal error.');
  for (const command of COMMANDS) {
    parser = parser.command(command.name, command.describe, command.builder, async (args) => {
      // A non-throwing .fail() lets yargs go on to the handler; never run a command on bad usage.
      if (usageError !== null) return;
      const module = await command.load();
      exitCode = await module.run(args as Record<string, unknown>, io);
    });
  }
  try {
    let helpText = '';
    await parser.parseAsync(argv, {}, (_err, _argv, output) => {
      helpText = output;
    });
    if (usageError !== null) {
      if (helpText) io.err(`${helpText}\n`);
      io.err(`llama-eval: ${usageError}\n`);
      return EXIT.input;
    }
    if (helpText) io.out(`${helpText}\n`);
    return exitCode;
  } catch (error) {
    if (isInputError(error)) {
      io.err(`llama-eval: ${error.message}\n`);
      return EXIT.input;
    }
    io.err(`llama-eval: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return EXIT.internal;
  }
}
