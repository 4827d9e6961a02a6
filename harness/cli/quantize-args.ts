import type { CommandSpec } from './command.ts';

export const QUANTIZE_FORMATS = ['nf4'] as const;

export const QUANTIZE_COMMAND: CommandSpec = {
  name: 'quantize',
  describe: 'Write a quantized copy of a checkpoint (NF4 with double quantization, bitsandbytes/transformers layout)',
  builder: (y) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'Zoo id (tiny-* are generated on first use), checkpoint directory, or HF repo id' })
      .option('to', { choices: QUANTIZE_FORMATS, default: 'nf4' as const, describe: 'nf4: bitsandbytes NF4, block 64, double-quantized absmax (QLoRA)' })
      .option('out', { type: 'string', demandOption: true, describe: 'Output checkpoint directory (created; must be empty or absent)' })
      .option('offline', { type: 'boolean', default: false, describe: 'Never download (also HF_HUB_OFFLINE=1)' })
      .option('json', { type: 'boolean', default: false, describe: 'Print {"out", "quantized_tensors", "bytes_in", "bytes_out"}' })
      .example('$0 quantize --model tiny-llama-3 --to nf4 --out ./tiny-llama-3-nf4', 'then: llama-eval logprobs --model ./tiny-llama-3-nf4 ...'),
  load: () => import('./quantize.ts'),
};
