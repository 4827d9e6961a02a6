import type { CommandSpec } from './command.ts';

export const EXPORT_FORMATS = ['onnx', 'gguf'] as const;
// Kept here rather than imported from runners/gguf so that --help loads no runner code.
const GGUF_DTYPES = ['f32', 'f16'] as const;

export const EXPORT_COMMAND: CommandSpec = {
  name: 'export',
  describe: 'Write a model as an ONNX directory (transformers.js layout) or a GGUF file (llama.cpp)',
  builder: (y) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'Zoo id (tiny-* are generated on first use), checkpoint directory, or HF repo id' })
      .option('format', { choices: EXPORT_FORMATS, default: 'onnx' as const, describe: 'onnx: transformers.js directory; gguf: one llama.cpp file' })
      .option('out', { type: 'string', demandOption: true, describe: 'Output directory (onnx; created, files of the same names replaced) or .gguf file (gguf)' })
      .option('dtype', { choices: GGUF_DTYPES, default: 'f32' as const, describe: 'GGUF tensor type (2-D weights; norms stay F32 as convert_hf_to_gguf.py keeps them)' })
      .option('fused', { type: 'boolean', default: false, describe: 'Use ORT contrib ops (GroupQueryAttention...): faster in onnxruntime, no left padding' })
      .option('offline', { type: 'boolean', default: false, describe: 'Never download (also HF_HUB_OFFLINE=1)' })
      .option('json', { type: 'boolean', default: false, describe: 'gguf: print {"out", "format", "dtype", "tensors", "bytes"}' })
      .example('$0 export --model tiny-llama-3 --out ./tiny-llama-3-onnx', 'past_key_values.N.key/value inputs, present.N.key/value outputs')
      .example('$0 export --model tiny-llama-3 --format gguf --out tiny-llama-3-f16.gguf --dtype f16', 'a GGUF file llama.cpp loads (Q/K permuted as convert_hf_to_gguf.py does)'),
  load: () => import('./export.ts'),
};
