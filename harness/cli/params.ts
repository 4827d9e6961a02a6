// `llama-eval params`: exact parameter counts, with a PEFT method's trainable parameters.
import { resolveModel } from '../zoo.ts';
import { paramsBreakdown } from '../params/report.ts';
import type { CliIO } from './command.ts';
import { exactCount, printJson, printTable } from './output.ts';

export async function run(args: Record<string, unknown>, io: CliIO): Promise<number> {
  const { report, peft } = paramsBreakdown(resolveModel(String(args.model)), args.peft as string | undefined);
  if (args.json) {
    printJson(io, report);
    return 0;
  }
  const rows: (string | number)[][] = [
    ['total', exactCount(report.total_params)],
    ['active (per token)', exactCount(report.active_params)],
    ['embedding', exactCount(report.embedding_params)],
    ['trainable', exactCount(report.trainable_params)],
  ];
  if (report.vision_params !== undefined) rows.push(['vision (not in total)', exactCount(report.vision_params)]);
  for (const [name, n] of Object.entries(report.components)) rows.push([`  ${name}`, exactCount(n)]);
  io.out(`${report.model}${peft ? ` + ${peft.label}` : ''}\n`);
  printTable(io, ['parameters', 'count'], rows);
  return 0;
}
