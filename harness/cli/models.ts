// `llama-eval models`: the zoo with family, version, total/active params, context, modality.
import { ZOO, resolveModel } from '../zoo.ts';
import { countModelParams } from '../params/index.ts';
import type { CliIO } from './command.ts';
import { humanCount, printJson, printTable } from './output.ts';

export interface ModelRow {
  id: string;
  family: string;
  version: string;
  hf_repo: string;
  total_params: number;
  active_params: number;
  vision_params: number | null;
  /** null where no figure is published (Behemoth). */
  context_length: number | null;
  modality: string;
  /** False for entries known only from published figures (Llama 4 Behemoth). */
  exact: boolean;
  note: string | null;
}

export function modelRows(): ModelRow[] {
  return ZOO.map((entry) => {
    const { arch } = resolveModel(entry.id);
    const base = { id: entry.id, family: entry.family, version: entry.version, hf_repo: entry.hfRepo, modality: entry.modality };
    if (!arch) {
      const p = entry.published ?? {};
      return {
        ...base,
        total_params: p.totalParams?.value ?? 0,
        active_params: p.activeParams?.value ?? p.totalParams?.value ?? 0,
        vision_params: null,
        context_length: p.contextLength?.value ?? null,
        exact: false,
        note: p.note ?? 'published figures only',
      };
    }
    const count = countModelParams(arch);
    return {
      ...base,
      total_params: count.total,
      active_params: count.active,
      vision_params: count.vision,
      context_length: arch.text.maxPositionEmbeddings,
      exact: true,
      note: null,
    };
  });
}

export async function run(args: Record<string, unknown>, io: CliIO): Promise<number> {
  const rows = modelRows();
  if (args.json) {
    printJson(io, rows);
    return 0;
  }
  printTable(
    io,
    ['id', 'version', 'total', 'active', 'vision', 'context', 'modality', 'hf repo'],
    rows.map((r) => [
      r.exact ? r.id : `${r.id} *`,
      r.version,
      humanCount(r.total_params),
      humanCount(r.active_params),
      r.vision_params === null ? '-' : humanCount(r.vision_params),
      r.context_length ?? '-',
      r.modality,
      r.hf_repo,
    ]),
  );
  io.out('total/active: text model parameters (active = per token for MoE); vision: encoder + projector.\n');
  if (rows.some((r) => !r.exact)) io.out('* published figures only (weights never released); not computed from a config.\n');
  return 0;
}
