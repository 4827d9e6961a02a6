import type { CommandSpec } from './command.ts';

export const TOKENIZE_COMMAND: CommandSpec = {
  name: 'tokenize',
  describe: "Token ids of a text with a model's own tokenizer (tokenizer.json), BOS as its config adds it",
  builder: (y) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'Zoo id (tiny-* are generated on first use), checkpoint directory, or HF repo id' })
      .option('text', { type: 'string', demandOption: true, describe: 'Text to tokenize' })
      .option('special-tokens', { type: 'boolean', default: true, describe: 'Add special tokens (BOS) as the tokenizer config says; --no-special-tokens for the bare text' })
      .option('offline', { type: 'boolean', default: false, describe: 'Never download (also HF_HUB_OFFLINE=1)' })
      .option('json', { type: 'boolean', default: false, describe: 'Print {"input_ids": [...]} (field names are a stable contract)' })
      .example('$0 tokenize --model tiny-llama-2 --text "Hello world" --json', '{"input_ids": [1, 15043, 3186]}')
      .example('$0 tokenize --model tiny-llama-3 --text "Hello world" --no-special-tokens --json', '{"input_ids": [9906, 1917]}'),
  load: () => import('./tokenize.ts'),
};
