import type { CommandSpec } from './command.ts';

export const RUN_DEFAULT_MODEL = 'tiny-llama-3';

export const RUN_COMMAND: CommandSpec = {
  name: 'run',
  describe: 'Evaluate models (x PEFT adapters) on task suites; writes <out>/records.jsonl, results.json and a table',
  builder: (y) =>
    y
      .option('suite', { type: 'string', array: true, default: [], describe: 'Suites: commonsense arithmetic legal medical (several allowed; none and no --task = all)' })
      .option('task', { alias: 'tasks', type: 'string', array: true, default: [], describe: 'Tasks by name, in addition to --suite (e.g. --task boolq piqa, --tasks boolq,piqa)' })
      .option('model', { type: 'string', array: true, default: [], describe: `Zoo id, checkpoint directory or HF repo id (several allowed; default: the embedded ${RUN_DEFAULT_MODEL})` })
      .option('dtype', { choices: ['fp32', 'fp16'] as const, default: 'fp32' as const, describe: 'Compute dtype of the ORT graph: fp16 halves the weights (norm statistics, softmax and logits stay fp32, as HF fp16 LLaMA); --backend ort only, not with --peft' })
      .option('peft', { type: 'string', array: true, default: [], describe: 'HF PEFT adapter directory, official LLaMA-Adapter release file.pth[:layers=N], or a spec (e.g. lora:r=8,alpha=16) evaluated as PEFT initialises it (identity, except QLoRA\'s NF4 base); several make a cross product' })
      .option('backend', {
        choices: ['ort', 'reference', 'llamacpp', 'openai', 'null'] as const,
        default: 'ort' as const,
        describe: 'ort: ONNX Runtime graph (fp32, CPU); reference: float64 TypeScript forward (the oracle, slow); llamacpp: GGUF via node-llama-cpp; openai: an OpenAI-compatible server (--base-url, --model = served name); null: no model, hash-derived scores (pipeline checks)',
      })
      .option('base-url', { type: 'string', describe: 'openai backend: server root, e.g. http://localhost:8000 (vLLM, TGI, llama-eval serve)' })
      .option('api-key-env', { type: 'string', describe: 'openai backend: name of the environment variable holding the API key (the key is never written)' })
      .option('request-timeout', { type: 'number', describe: 'openai backend: seconds before one request attempt is abandoned and retried (default 300)' })
      .option('retries', { type: 'number', describe: 'openai backend: retries of a failed request, with exponential backoff (default 5; 0 fails at once)' })
      .option('shard', { type: 'string', describe: 'i/N: run slice i (0-based) of N of the plan, by cell or by document range (docs/scale.md); join the outputs with llama-eval merge' })
      .option('protocol', { choices: ['loglikelihood', 'generation'] as const, describe: "Force a protocol (default: each task's first)" })
      .option('out', { alias: 'output', type: 'string', describe: 'Output directory (default runs/<timestamp>); an existing one is resumed' })
      .option('resume', { type: 'boolean', default: false, describe: 'Continue the run in --out; refuses (exit 2) when --out holds no run, instead of starting a fresh one' })
      .option('num-fewshot', { type: 'number', default: 0, describe: 'Worked examples before each prompt, drawn from the task\'s other documents (seeded per document by --seed)' })
      .option('batch-size', { type: 'number', default: 1, describe: 'Documents whose requests go to the runner in one call' })
      .option('cache', { type: 'boolean', default: true, describe: 'Reuse cached runner answers (--no-cache: always compute)' })
      .option('cache-dir', { type: 'string', describe: 'Response cache directory (default $XDG_CACHE_HOME/llama-eval/responses or ~/.cache/llama-eval/responses)' })
      .option('limit', { type: 'number', describe: 'Evaluate at most N documents per task (the first N)' })
      .option('seed', { type: 'number', default: 1234, describe: 'Seed recorded in the manifest and part of every cell id' })
      .option('data', { type: 'string', describe: 'Local file or directory in the upstream format, instead of the default data source' })
      .option('offline', { type: 'boolean', default: false, describe: 'Never touch the network (also HF_HUB_OFFLINE=1)' })
      .option('history', { type: 'boolean', default: true, describe: 'Ingest the finished run into the DuckDB run history (--no-history to skip; docs/history.md)' })
      .option('db', { type: 'string', describe: 'History store file (default $XDG_CACHE_HOME/llama-eval/history.duckdb)' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the summary as JSON (the results.json document)' })
      .example('$0 run --suite medical --limit 20', `the embedded default model (${RUN_DEFAULT_MODEL}) on the medical suite`)
      .example('$0 run --task boolq piqa --model ./Llama-3.2-1B --out runs/l32', 'rerun with the same --out to resume')
      .example('$0 run --tasks arc_easy,piqa --num-fewshot 5 --output runs/fs5', 'five-shot; rerun with --resume to continue a killed run')
      .example('$0 run --suite medical --model tiny-llama-2 --peft ./my-lora --peft qlora:r=64', 'a trained LoRA adapter, and the NF4-quantized base, against the base')
      .example('$0 run --suite arithmetic --backend openai --base-url http://localhost:8000 --model meta-llama/Llama-3.1-70B', 'a model served by vLLM/TGI')
      .example('$0 run --suite commonsense --backend null --peft lora:r=8', 'check the pipeline without a model')
      .example('$0 run --suite medical --shard 0/4 --out runs/med-0', 'machine 0 of 4; then llama-eval merge runs/med-* --out runs/med')
      .epilogue('Exit codes: 0 every cell ok or skipped, 1 a cell failed (see its error record), 2 usage or input error, 3 internal error.'),
  load: () => import('./run.ts'),
};
