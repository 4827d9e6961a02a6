// Which model, PEFT method and task a cell belongs to. Only metric and params records name the
// model; samples, memory, throughput and error records carry just a cell_id. So the cell's
// identity is learned from whichever of its records names it, and, for a cell that left nothing
// but an error, from the planner's cell id convention `<model>/<peft|base>/<task>[/<shard>]`.
import type { RunRecord } from '../results/schema.ts';

export interface CellIdentity {
  model: string;
  /** PEFT method or adapter name; null for the base model. */
  peft: string | null;
  task: string | null;
}

const BASE_NAMES = new Set(['base', 'none', '-']);

/** A params record's `peft` is free-form: a name, null, or an object such as an adapter config. */
export function peftName(peft: unknown): string | null {
  if (peft === null || peft === undefined) return null;
  if (typeof peft === 'string') return BASE_NAMES.has(peft) ? null : peft;
  if (typeof peft === 'object') {
    const o = peft as Record<string, unknown>;
    // `method` is ours; `peft_type` is HF PEFT's adapter_config.json field (e.g. "LORA").
    for (const key of ['method', 'name', 'peft_type', 'type']) {
      const v = o[key];
      if (typeof v === 'string' && v !== '') return v.toLowerCase();
    }
  }
  return JSON.stringify(peft);
}

function parseCellId(cellId: string): CellIdentity {
  const parts = cellId.split('/');
  if (parts.length >= 3) {
    const [model = cellId, peft = 'base', task = null] = parts;
    return { model, peft: BASE_NAMES.has(peft) ? null : peft, task };
  }
  return { model: cellId, peft: null, task: null };
}

/** cell_id -> identity for every cell in `records` except the run-level manifest. */
export function cellIdentities(records: readonly RunRecord[]): Map<string, CellIdentity> {
  const known = new Map<string, Partial<CellIdentity>>();
  const note = (cellId: string, part: Partial<CellIdentity>) => {
    const cur = known.get(cellId) ?? {};
    for (const [k, v] of Object.entries(part) as [keyof CellIdentity, string | null | undefined][]) {
      if (v !== undefined && cur[k] === undefined) (cur as Record<string, unknown>)[k] = v;
    }
    known.set(cellId, cur);
  };
  for (const r of records) {
    switch (r.kind) {
      case 'metric': note(r.cell_id, { model: r.model, peft: r.peft, task: r.task }); break;
      case 'params': note(r.cell_id, { model: r.model, peft: peftName(r.peft) }); break;
      case 'sample': note(r.cell_id, { task: r.task }); break;
      case 'error': note(r.cell_id, { task: r.task }); break;
      case 'memory': case 'throughput': note(r.cell_id, {}); break;
      // A drift record names its config but no task: drift is measured per model + adapter.
      case 'drift': note(r.cell_id, { model: r.model, peft: r.peft, task: null }); break;
      default: break; // manifest and kernel records are not cells of the model x peft x task plan
    }
  }
  const out = new Map<string, CellIdentity>();
  for (const [cellId, part] of known) {
    const parsed = parseCellId(cellId);
    out.set(cellId, {
      model: part.model ?? parsed.model,
      peft: part.model !== undefined ? (part.peft ?? null) : parsed.peft,
      task: part.task ?? parsed.task,
    });
  }
  return out;
}

/** The config a cell belongs to: one row of a leaderboard, one column of a score table. */
export function configKey(model: string, peft: string | null): string {
  return `${model}/${peft ?? 'base'}`;
}

/**
 * LLaMA version from a model id: "llama-3.1-8b" -> "3.1", "tiny-llama-2" -> "2",
 * "Meta-Llama-3-8B" -> "3", "Llama-4-Scout-17B-16E" -> "4". Reports may not import the zoo
 * (DESIGN.md: reports depend on results only), and every zoo id and HF repo follows this form.
 */
export function llamaVersion(model: string): string | null {
  // The lookahead stops "llama-65b" (LLaMA 1 by size, no version) from reading as version 6.
  return /llama-?(\d(?:\.\d)?)(?=$|[-_/ ])/i.exec(model)?.[1] ?? null;
}
