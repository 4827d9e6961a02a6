// `llama-eval serve`: the reference forward behind an OpenAI-compatible /v1/completions server until
// SIGINT/SIGTERM. (The ORT runner takes its place once it exposes token-level scores.)
import { InputError } from '../../results/errors.ts';
import { CompletionsServer } from '../../runners/remote/server.ts';
import { servedReferenceModel } from '../../runners/remote/served-reference.ts';
import type { CliIO } from './command.ts';

export async function run(args: Record<string, unknown>, io: CliIO, stop?: Promise<void>): Promise<number> {
  const port = Number(args.port ?? 8000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InputError(`--port ${String(args.port)}: expected an integer from 0 to 65535`);
  const host = String(args.host ?? '127.0.0.1');
  const model = await servedReferenceModel(String(args.model), {
    name: typeof args.modelName === 'string' ? args.modelName : undefined,
    offline: args.offline === true,
  });
  const server = new CompletionsServer(model);
  let bound: number;
  try {
    bound = await server.listen(port, host);
  } catch (error) {
    throw new InputError(`--port ${port}: cannot listen on ${host}:${port} (${(error as Error).message}); pick another port or --port 0`);
  }
  io.out(`serving ${model.name} (reference, float64) on http://${host}:${bound}/v1 — Ctrl-C to stop\n`);
  await (stop ??
    new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    }));
  await server.close();
  return 0;
}
