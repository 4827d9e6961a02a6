import { MODES, OPTIMIZERS, WEIGHT_DTYPES } from '../memory.ts';
import type { CommandSpec } from './command.ts';

export const MEMORY_COMMAND: CommandSpec = {
  name: 'memory',
  describe: 'Estimate GPU memory for inference or fine-tuning, term by term (see docs/memory.md)',
  builder: (y) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'Zoo id, checkpoint directory, or HF repo id in the HF cache' })
      .option('peft', { type: 'string', describe: 'PEFT spec or adapter directory (as for `params`)' })
      .option('mode', { choices: MODES, default: 'inference' as const, describe: 'inference: weights + KV cache; finetune: + gradients, optimizer states' })
      .option('dtype', { choices: WEIGHT_DTYPES, default: 'bf16' as const, describe: 'Base weight dtype (nf4: QLoRA double-quantized; int4: group-128 fp16 scales)' })
      .option('seq', { type: 'number', default: 2048, describe: 'Sequence length (tokens)' })
      .option('batch', { type: 'number', default: 1, describe: 'Batch size' })
      .option('optimizer', { choices: OPTIMIZERS, default: 'adamw' as const, describe: 'Fine-tuning optimizer (fp32 AdamW moments, or bitsandbytes paged 8-bit)' })
      .option('gradient-checkpointing', { type: 'boolean', default: true, describe: 'Fine-tuning: keep layer inputs only and recompute (as QLoRA does)' })
      .option('json', { type: 'boolean', default: false, describe: 'Print JSON (field names are a stable contract)' })
      .example('$0 memory --model llama-1-65b --peft qlora --mode finetune --dtype nf4 --seq 512', 'the QLoRA paper setting')
      .example('$0 memory --model llama-4-scout --dtype int4 --json', 'does Scout fit one H100?'),
  load: () => import('./memory.ts'),
};
