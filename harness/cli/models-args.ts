import type { CommandSpec } from './command.ts';

export const MODELS_COMMAND: CommandSpec = {
  name: 'models',
  describe: 'List the model zoo: every LLaMA version with exact parameter counts (no download)',
  builder: (y) =>
    y
      .option('json', { type: 'boolean', default: false, describe: 'Print a JSON array instead of a table' })
      .example('$0 models', 'table of every zoo model')
      .example('$0 models --json | jq ".[] | select(.version == \\"3.1\\")"', 'machine-readable'),
  load: () => import('./models.ts'),
};
