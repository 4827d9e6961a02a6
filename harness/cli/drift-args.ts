import { DRIFT_BACKENDS } from '../drift/backends.ts';
import type { CommandSpec } from './command.ts';

export const DRIFT_COMMAND: CommandSpec = {
  name: 'drift',
  describe: 'How far an adapter, NF4 or another backend moved the next-token distribution: KL(base || adapted), top-1 agreement, PPL ratio',
  builder: (y) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'Zoo id (tiny-* are generated on first use), checkpoint directory, or HF repo id' })
      .option('peft', { type: 'string', describe: 'The adapted side: a PEFT spec (lora:r=8, adapter-v1, ...) or an HF PEFT adapter directory' })
      .option('against', {
        type: 'string',
        default: 'base',
        describe: 'The reference side: base (the model without --peft), nf4 (the same model with an NF4 base: QLoRA\'s cost), ' +
          'unmerged (--peft as side branches vs merged), reference (the float64 forward, with --backend ort), or another PEFT spec/adapter',
      })
      .option('backend', { choices: DRIFT_BACKENDS, default: 'reference' as const, describe: 'reference: float64 TypeScript forward; ort: ONNX Runtime graph (adapters merged)' })
      .option('data', { type: 'string', demandOption: true, describe: 'A UTF-8 text file, or a task name (its documents as evaluated: context + gold answer)' })
      .option('max-tokens', { type: 'number', default: 256, describe: 'Score at most this many positions' })
      .option('ctx', { type: 'number', describe: 'Tokens per window, BOS included (default: min(256, max_position_embeddings))' })
      .option('seed', { type: 'number', default: 0, describe: 'Seed of spec-string adapter weights' })
      .option('init', { choices: ['random', 'zero'] as const, default: 'random' as const, describe: "Spec-string adapters: 'zero' is PEFT's identity init (B = 0, gate 0)" })
      .option('offline', { type: 'boolean', default: false, describe: 'Never download (also HF_HUB_OFFLINE=1)' })
      .option('out', { type: 'string', describe: 'Run directory: appends a drift record to <out>/records.jsonl (joining the run already there)' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the drift record as JSON' })
      .example('$0 drift --model tiny-llama-3 --peft lora:r=8 --data notes.txt', 'base vs LoRA')
      .example('$0 drift --model tiny-llama-3 --against nf4 --data boolq', 'fp32 vs NF4 base (QLoRA)')
      .example('$0 drift --model tiny-llama-3 --backend ort --against reference --data notes.txt', 'ORT vs the float64 reference')
      .example('$0 drift --model ./Llama-3.2-1B --peft ./adapter --data pubmedqa --out runs/l32', 'drift beside the accuracy of run runs/l32'),
  load: () => import('./drift.ts'),
};
