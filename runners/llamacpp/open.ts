// `--backend llamacpp --model X`: X is a .gguf file (run with the vocabulary inside it) or anything
// openCheckpoint accepts (zoo id, tiny-*, checkpoint directory, HF repo id), which is exported to
// GGUF once — cached beside the checkpoint's tiny cache, keyed by dtype and the weights' mtime —
// and run with the checkpoint's own tokenizer, so its token ids are those of the other backends.
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { exportCheckpointToGguf, type GgufExportDtype } from '../gguf/llama.ts';
import { openCheckpoint } from '../hf/checkpoint.ts';
import { INDEX_FILE, SINGLE_FILE } from '../hf/weights.ts';
import { LlamaTokenizer } from '../tokenizer.ts';
import { LlamaCppRunner, type LlamaCppRunnerOptions } from './runner.ts';

export interface OpenLlamaCppOptions extends Omit<LlamaCppRunnerOptions, 'modelPath' | 'model' | 'tokenizer'> {
  offline?: boolean;
  env?: NodeJS.ProcessEnv;
  /** Tensor type of the GGUF written for a checkpoint (default f32, the parity precision). */
  dtype?: GgufExportDtype;
}

function ggufCacheDir(env: NodeJS.ProcessEnv): string {
  const root = env.LLAMA_EVAL_CACHE ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'llama-eval');
  return join(root, 'gguf');
}

export async function openLlamaCppRunner(model: string, options: OpenLlamaCppOptions = {}): Promise<LlamaCppRunner> {
  const env = options.env ?? process.env;
  if (model.endsWith('.gguf') && existsSync(model)) return LlamaCppRunner.open({ ...options, modelPath: model, model, tokenizer: null });
  const checkpoint = await openCheckpoint(model, { offline: options.offline, env });
  const dtype = options.dtype ?? 'f32';
  const weightsFile = [INDEX_FILE, SINGLE_FILE].map((f) => join(checkpoint.dir, f)).find((f) => existsSync(f));
  const stamp = weightsFile ? Math.floor(statSync(weightsFile).mtimeMs) : 0;
  const dir = ggufCacheDir(env);
  const file = join(dir, `${model.replace(/[^\w.-]+/g, '_')}-${dtype}-${stamp}.gguf`);
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    const tmp = `${file}.tmp-${process.pid}`;
    try {
      exportCheckpointToGguf(checkpoint, tmp, dtype);
      renameSync(tmp, file);
    } finally {
      rmSync(tmp, { force: true });
    }
  }
  const eos = checkpoint.config.eos_token_id;
  const eosTokenIds = (Array.isArray(eos) ? eos : [eos]).filter((id): id is number => typeof id === 'number');
  return LlamaCppRunner.open({ ...options, modelPath: file, model, tokenizer: LlamaTokenizer.fromDir(checkpoint.dir), eosTokenIds });
}
