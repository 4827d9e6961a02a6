import type { CommandSpec } from './command.ts';

export const RUN_DEFAULT_MODEL = 'tiny-llama-3';

export const RUN_COMMAND: CommandSpec = {
  name: 'run',
  describe: 'Evaluate models (x PEFT adapters) on task suites; writes <out>/records.jsonl, results.json and a table',
  builder: (y) =>
    y
      .option('suite', { type: 'string', array: true, default: [], describe: 'Suites: commonsense arithmetic legal medical (several allowed; none and no --task = all)' })
      .option('task', { type: 'string', array: true, default: [], describe: 'Tasks by name, in addition to --suite (e.g. --task boolq piqa)' })
      .option('model', { type: 'string', array: true, default: [], describe: `Zoo id, checkpoint directory or HF repo id (several allowed; default: the embedded ${RUN_DEFAULT_MODEL})` })
      .option('peft', { type: 'string', array: true, default: [], describe: 'PEFT spec (e.g. lora:r=8,alpha=16) or HF PEFT adapter directory; several make a cross product' })
      .option('backend', { choices: ['reference', 'null', 'ort'] as const, default: 'reference' as const, describe: 'reference: float64 TypeScript forward; null: no model, hash-derived scores (pipeline checks); ort: ONNX Runtime' })
      .option('protocol', { choices: ['loglikelihood', 'generation'] as const, describe: "Force a protocol (default: each task's first)" })
      .option('out', { type: 'string', describe: 'Output directory (default runs/<timestamp>); an existing one is resumed' })
      .option('limit', { type: 'number', describe: 'Evaluate at most N documents per task (the first N)' })
      .option('seed', { type: 'number', default: 1234, describe: 'Seed recorded in the manifest and part of every cell id' })
      .option('data', { type: 'string', describe: 'Local file or directory in the upstream format, instead of the default data source' })
      .option('offline', { type: 'boolean', default: false, describe: 'Never touch the network (also HF_HUB_OFFLINE=1)' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the summary as JSON (the results.json document)' })
      .example('$0 run --suite medical --limit 20', `the embedded default model (${RUN_DEFAULT_MODEL}) on the medical suite`)
      .example('$0 run --task boolq piqa --model ./Llama-3.2-1B --out runs/l32', 'rerun with the same --out to resume')
      .example('$0 run --suite commonsense --backend null --peft lora:r=8 --peft qlora:r=64', 'check the pipeline without a model')
      .epilogue('Exit codes: 0 every cell ok or skipped, 1 a cell failed (see its error record), 2 usage or input error, 3 internal error.'),
  load: () => import('./run.ts'),
};
