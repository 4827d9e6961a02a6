// The shape of a CLI command: its yargs definition (cheap, imported eagerly for --help) and a
// lazily imported module that does the work and returns an exit code.
import type { Argv } from 'yargs';

export interface CliIO {
  out: (s: string) => void;
  err: (s: string) => void;
}

export interface CommandModule {
  run(args: Record<string, unknown>, io: CliIO): Promise<number>;
}

export interface CommandSpec {
  name: string;
  describe: string;
  builder: (y: Argv) => Argv;
  load: () => Promise<CommandModule>;
}
