// Backend factory: the one place that maps a backend name to a Runner, so the run engine never
// imports a backend it does not use (the reference forward and ORT are loaded lazily).
import { InputError } from '../results/errors.ts';
import type { Backend, Runner } from './types.ts';

export interface OpenRunnerOptions {
  backend: Backend;
  /** Zoo id, tiny-* id, checkpoint directory or HF repo id. */
  model: string;
  /** PEFT label for RunnerInfo; only the null backend accepts one until adapters can be applied. */
  peft: string | null;
  offline: boolean;
  env?: NodeJS.ProcessEnv;
}

/** Backends `llama-eval run` can use today. */
export const RUN_BACKENDS = ['reference', 'null', 'ort'] as const satisfies readonly Backend[];

export async function openRunner(options: OpenRunnerOptions): Promise<Runner> {
  switch (options.backend) {
    case 'null': {
      const { NullRunner } = await import('./null.ts');
      return new NullRunner({ model: options.model, peft: options.peft });
    }
    case 'reference': {
      if (options.peft !== null) {
        throw new InputError(`--peft ${options.peft}: the reference backend cannot apply adapters yet (issue 5 adds PEFT to the reference forward); use --backend null to exercise the pipeline`);
      }
      const { ReferenceRunner } = await import('./reference-runner.ts');
      return ReferenceRunner.open(options.model, { offline: options.offline, env: options.env });
    }
    case 'ort':
      throw new InputError('--backend ort is not available yet: the ORT runner (issue 4) has not landed; use --backend reference or --backend null');
    default:
      throw new InputError(`--backend ${options.backend} is not available to llama-eval run yet (expected one of ${RUN_BACKENDS.join(', ')}; issue 9 adds llama.cpp and OpenAI-compatible servers)`);
  }
}
