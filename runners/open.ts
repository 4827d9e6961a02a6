// Backend factory: the one place that maps a backend name to a Runner, so the run engine never
// imports a backend it does not use (the reference forward, ORT and llama.cpp are loaded lazily).
import { parsePeft, peftLabel } from './peft/spec/index.ts';
import { InputError } from '../results/errors.ts';
import type { Backend, Runner } from './types.ts';

export interface RemoteOptions {
  /** OpenAI-compatible server root (`--base-url`). */
  baseUrl: string;
  /** Environment variable holding the API key (`--api-key-env`); the key itself is never recorded. */
  apiKeyEnv: string | null;
  /** Per-attempt request timeout in ms (`--request-timeout`); the runner's default when absent. */
  timeoutMs?: number;
  /** Retries after a failed attempt (`--retries`); the runner's default when absent. */
  maxRetries?: number;
}

export interface OpenRunnerOptions {
  backend: Backend;
  /** Zoo id, tiny-* id, checkpoint directory or HF repo id; for `openai`, the served model name. */
  model: string;
  /** The `--peft` argument (spec string or HF PEFT adapter directory), or null for the base model. */
  peftArg: string | null;
  offline: boolean;
  env?: NodeJS.ProcessEnv;
  /** Required by the `openai` backend. */
  remote?: RemoteOptions;
  /** Compute dtype of the ORT text graph (default fp32); other backends refuse fp16. */
  dtype?: 'fp32' | 'fp16';
}

/** Backends `llama-eval run` can use today. */
export const RUN_BACKENDS = ['reference', 'ort', 'llamacpp', 'openai', 'null'] as const satisfies readonly Backend[];

/** A `--peft` value that runs as an adapter applied by this harness (not by a server or a GGUF file). */
function localOnly(backend: Backend, peftArg: string | null, fix: string): void {
  if (peftArg !== null) throw new InputError(`--peft ${peftArg}: the ${backend} backend cannot apply adapters; ${fix}`);
}

export async function openRunner(options: OpenRunnerOptions): Promise<Runner> {
  const peft = options.peftArg;
  if (options.dtype === 'fp16' && options.backend !== 'ort') {
    throw new InputError(`--dtype fp16: the ${options.backend} backend does not build an fp16 graph; use --backend ort (or drop --dtype)`);
  }
  switch (options.backend) {
    case 'null': {
      const { NullRunner } = await import('./null.ts');
      return new NullRunner({ model: options.model, peft: peft === null ? null : peftLabel(parsePeft(peft)) });
    }
    case 'reference': {
      const { ReferenceRunner } = await import('./reference-runner.ts');
      return ReferenceRunner.open(options.model, { offline: options.offline, env: options.env, peft: peft ?? undefined });
    }
    case 'ort': {
      // LLaMA 3.2 Vision (mllama) has its own graphs and runner (issue 10); the config decides.
      const { openCheckpoint } = await import('./hf/checkpoint.ts');
      const checkpoint = await openCheckpoint(options.model, { offline: options.offline, env: options.env });
      if (checkpoint.arch.modelType === 'mllama') {
        if (options.dtype === 'fp16') throw new InputError(`--dtype fp16: the ORT LLaMA 3.2 Vision graphs are fp32 only; drop --dtype for ${options.model}`);
        const { OrtMllamaRunner } = await import('./ort/mllama-runner.ts');
        return OrtMllamaRunner.open(checkpoint, { device: 'cpu', peft: peft ?? undefined });
      }
      // LLaMA 4 with a vision tower (Llama4ForConditionalGeneration): early fusion graphs of its own.
      if (checkpoint.arch.modelType === 'llama4' && checkpoint.arch.vision) {
        if (options.dtype === 'fp16') throw new InputError(`--dtype fp16: the ORT LLaMA 4 vision graphs are fp32 only; drop --dtype for ${options.model}`);
        const { OrtLlama4VisionRunner } = await import('./ort/llama4-vision-runner.ts');
        return OrtLlama4VisionRunner.open(checkpoint, { device: 'cpu', peft: peft ?? undefined });
      }
      const { openOrtRunner } = await import('./ort/runner.ts');
      return openOrtRunner(options.model, { device: 'cpu', offline: options.offline, env: options.env, peft: peft ?? undefined, dtype: options.dtype });
    }
    case 'llamacpp': {
      localOnly('llamacpp', peft, 'merge the adapter into the checkpoint first, or use --backend ort / reference');
      const { openLlamaCppRunner } = await import('./llamacpp/open.ts');
      return openLlamaCppRunner(options.model, { offline: options.offline, env: options.env });
    }
    case 'openai': {
      localOnly('openai', peft, 'serve the adapter on the server (vLLM --lora-modules) and name it with --model');
      if (!options.remote) throw new InputError('--backend openai needs --base-url (the server root, e.g. http://localhost:8000)');
      const { OpenAiRunner } = await import('./remote/openai.ts');
      return new OpenAiRunner({ baseUrl: options.remote.baseUrl, modelName: options.model, apiKeyEnv: options.remote.apiKeyEnv, env: options.env,
        timeoutMs: options.remote.timeoutMs, maxRetries: options.remote.maxRetries });
    }
    default:
      throw new InputError(`--backend ${String(options.backend)}: expected one of ${RUN_BACKENDS.join(', ')}`);
  }
}
