// spec -> plan (DESIGN.md data flow): a pure expansion of models x peft x tasks into cells, each
// with an id that is a function of exactly the inputs that decide its numbers. The id keeps the
// readable `<model>/<peft|base>/<task>` prefix reports parse (reports/cells.ts) and ends in a hash
// of all inputs, so a resumed run recognises its finished cells and a changed flag makes new ones.
import { createHash } from 'node:crypto';
import type { Backend } from '../../runners/types.ts';
import type { Protocol } from '../../suites/types.ts';

export interface PlanTask {
  name: string;
  protocols: readonly Protocol[];
}

export interface PlanPeft {
  /** As given on the command line (spec string or adapter directory). */
  arg: string;
  /** peftLabel() of the parsed spec: what metric records carry. */
  label: string;
}

export interface RunSpec {
  models: readonly string[];
  /** Empty: the base model only. */
  pefts: readonly PlanPeft[];
  tasks: readonly PlanTask[];
  backend: Backend;
  /** Force a protocol; otherwise each task's default (its first). */
  protocol: Protocol | null;
  limit: number | null;
  seed: number;
  dataPath: string | null;
  /** `--num-fewshot K` (0: zero-shot). */
  numFewshot?: number;
  /** `--dtype` of the ORT graph (default fp32). */
  dtype?: 'fp32' | 'fp16';
}

export interface Cell {
  id: string;
  model: string;
  peft: PlanPeft | null;
  task: string;
  protocol: Protocol;
  backend: Backend;
  limit: number | null;
  seed: number;
  dataPath: string | null;
  /** Few-shot examples per prompt (0: zero-shot). */
  numFewshot: number;
  /** Compute dtype of the runner's graph (`--dtype`; fp16 on ORT only). */
  dtype?: 'fp32' | 'fp16';
  /**
   * `--shard` split this cell's documents: it evaluates contiguous range `index` of `count` (0-based),
   * and `baseId` is the id the whole cell has in an unsharded run (what `merge` files its samples under).
   */
  part?: CellPart;
}

export interface CellPart {
  index: number;
  count: number;
  baseId: string;
}

/** `--shard i/N`: this process runs slice `index` (0-based) of `count`. */
export interface Shard {
  index: number;
  count: number;
}

export interface PlannedSkip {
  model: string;
  peft: string | null;
  task: string;
  reason: string;
}

export interface Plan {
  cells: Cell[];
  /** Cells that cannot run as asked (e.g. a task without the forced protocol): listed, not scored. */
  skipped: PlannedSkip[];
}

/** A path segment of the readable id prefix: no slashes, no whitespace runs. */
function segment(text: string): string {
  return text.replace(/[\\/]+/g, '_').replace(/\s+/g, '_');
}

export function cellId(cell: Omit<Cell, 'id'>): string {
  // Key order is fixed here, so the hash does not depend on how the caller built the object.
  const inputs: unknown[] = [cell.model, cell.peft?.arg ?? null, cell.peft?.label ?? null, cell.task, cell.protocol, cell.backend, cell.limit, cell.seed, cell.dataPath];
  // Appended only when few-shot: zero-shot cells keep the ids they had before the flag existed, so old runs still resume.
  if (cell.numFewshot > 0) inputs.push(['fewshot', cell.numFewshot]);
  // Likewise only when not the default: fp32 cells keep their ids.
  if (cell.dtype !== undefined && cell.dtype !== 'fp32') inputs.push(['dtype', cell.dtype]);
  const hash = createHash('sha256').update(JSON.stringify(inputs)).digest('hex').slice(0, 12);
  return `${segment(cell.model)}/${cell.peft ? segment(cell.peft.label) : 'base'}/${cell.task}/${hash}`;
}

export function planRun(spec: RunSpec): Plan {
  const cells: Cell[] = [];
  const skipped: PlannedSkip[] = [];
  const pefts: (PlanPeft | null)[] = spec.pefts.length > 0 ? [...spec.pefts] : [null];
  for (const model of spec.models) {
    for (const peft of pefts) {
      for (const task of spec.tasks) {
        const protocol = spec.protocol ?? task.protocols[0];
        if (protocol === undefined || !task.protocols.includes(protocol)) {
          skipped.push({ model, peft: peft?.label ?? null, task: task.name, reason: `does not support the ${spec.protocol ?? 'any'} protocol (supports: ${task.protocols.join(', ') || 'none'})` });
          continue;
        }
        const cell = { model, peft, task: task.name, protocol, backend: spec.backend, limit: spec.limit, seed: spec.seed, dataPath: spec.dataPath, numFewshot: spec.numFewshot ?? 0, ...(spec.dtype === 'fp16' ? { dtype: spec.dtype } : {}) };
        cells.push({ id: cellId(cell), ...cell });
      }
    }
  }
  return { cells, skipped };
}

/**
 * Shard `shard.index` of `shard.count` of a plan. With at least as many cells as shards, whole cells
 * are dealt round-robin (cell k to shard k mod N). With fewer, each cell's documents are split into
 * p = ceil(N / cells) contiguous ranges and the ranges dealt the same way, so every machine gets
 * work; p never exceeds --limit, so no range is empty when the limit is known. Deterministic: every
 * shard computes the same full plan and keeps its own slice. Skipped entries stay in every shard.
 */
export function shardPlan(plan: Plan, shard: Shard): Plan {
  const cells = plan.cells;
  if (shard.count === 1 || cells.length === 0) return plan;
  if (cells.length >= shard.count) return { cells: cells.filter((_, k) => k % shard.count === shard.index), skipped: plan.skipped };
  const mine: Cell[] = [];
  let unit = 0;
  for (const cell of cells) {
    const parts = Math.min(Math.ceil(shard.count / cells.length), cell.limit ?? Infinity);
    for (let index = 0; index < parts; index++, unit++) {
      if (unit % shard.count !== shard.index) continue;
      mine.push(parts === 1 ? cell : { ...cell, id: `${cell.id}/docs-${index + 1}of${parts}`, part: { index, count: parts, baseId: cell.id } });
    }
  }
  return { cells: mine, skipped: plan.skipped };
}

/** The documents a cell evaluates: all of `docs`, or its contiguous range when `--shard` split it. */
export function docRange<D>(cell: Pick<Cell, 'part'>, docs: readonly D[]): readonly D[] {
  if (!cell.part) return docs;
  const { index, count } = cell.part;
  return docs.slice(Math.floor((index * docs.length) / count), Math.floor(((index + 1) * docs.length) / count));
}
