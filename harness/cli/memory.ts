// `llama-eval memory`: memory estimate for inference or fine-tuning (formula: docs/memory.md).
import { estimateMemory, GPUS, type Mode, type Optimizer, type WeightDtype } from '../memory.ts';
import { paramsBreakdown } from '../params/report.ts';
import { resolveModel } from '../zoo.ts';
import type { CliIO } from './command.ts';
import { humanBytes, printJson, printTable } from './output.ts';

export async function run(args: Record<string, unknown>, io: CliIO): Promise<number> {
  const model = resolveModel(String(args.model));
  const { arch, base, peft, report } = paramsBreakdown(model, args.peft as string | undefined);
  const estimate = estimateMemory({
    arch: arch.text,
    params: base,
    peftAddedParams: peft ? peft.addedParams : null,
    trainableParams: report.trainable_params,
    mode: args.mode as Mode,
    dtype: args.dtype as WeightDtype,
    seq: Number(args.seq),
    batch: Number(args.batch),
    optimizer: args.optimizer as Optimizer,
    gradientCheckpointing: Boolean(args.gradientCheckpointing ?? true),
  });
  if (args.json) {
    printJson(io, estimate);
    return 0;
  }
  io.out(`${model.id}${args.peft ? ` + ${String(args.peft)}` : ''}: ${String(args.mode)}, ${String(args.dtype)} weights, seq ${String(args.seq)} x batch ${String(args.batch)}\n`);
  printTable(io, ['term', 'bytes'], [
    ['weights', humanBytes(estimate.weights_bytes)],
    ['kv cache', humanBytes(estimate.kv_cache_bytes)],
    ['activations', humanBytes(estimate.activation_bytes)],
    ['gradients', humanBytes(estimate.gradient_bytes)],
    ['optimizer', humanBytes(estimate.optimizer_bytes)],
    ['total', humanBytes(estimate.total_bytes)],
  ]);
  printTable(io, ['GPU', 'fits'], GPUS.map((g) => [g.name, estimate.fits[g.name] ? 'yes' : 'no']));
  return 0;
}
