import type { CommandSpec } from './command.ts';

export const SERVE_COMMAND: CommandSpec = {
  name: 'serve',
  describe: 'Serve a model behind an OpenAI-compatible /v1/completions endpoint (echo + logprobs for scoring)',
  builder: (y) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'Zoo id (tiny-* are generated on first use), checkpoint directory, or HF repo id' })
      .option('model-name', { type: 'string', describe: 'Name clients send as "model" (default: --model as given)' })
      .option('host', { type: 'string', default: '127.0.0.1', describe: 'Interface to listen on (0.0.0.0 to share with a team; there is no authentication)' })
      .option('port', { type: 'number', default: 8000, describe: 'TCP port (0: any free port, printed at start)' })
      .option('offline', { type: 'boolean', default: false, describe: 'Never download (also HF_HUB_OFFLINE=1)' })
      .example('$0 serve --model tiny-llama-3 --port 8000', 'then: llama-eval run --backend openai --base-url http://127.0.0.1:8000/v1 --model-name tiny-llama-3 ...'),
  load: () => import('./serve.ts'),
};
