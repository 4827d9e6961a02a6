import type { CommandSpec } from './command.ts';

export const PARAMS_COMMAND: CommandSpec = {
  name: 'params',
  describe: 'Exact parameter counts of a model, optionally with a PEFT method (no download)',
  builder: (y) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'Zoo id (see `models`), checkpoint directory, or HF repo id in the HF cache' })
      .option('peft', {
        type: 'string',
        describe:
          'PEFT spec, HF PEFT adapter directory, or official LLaMA-Adapter release file.pth[:layers=N]: lora:r=8,alpha=16,targets=q_proj+v_proj | qlora:r=64,alpha=16,targets=all-linear | adapter-v1:layers=30,len=10 | adapter-v2 | excitor',
      })
      .option('json', { type: 'boolean', default: false, describe: 'Print JSON (field names are a stable contract)' })
      .example('$0 params --model llama-1-7b --peft lora:r=8,targets=q_proj+v_proj --json', 'LoRA trainable count on LLaMA-7B')
      .example('$0 params --model llama-1-7b --peft ./adapter-v1.pth:layers=30', 'an official LLaMA-Adapter release, checked against the model')
      .example('$0 params --model ./my-checkpoint', 'any local HF checkpoint directory'),
  load: () => import('./params.ts'),
};
