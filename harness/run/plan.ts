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
        const cell = { model, peft, task: task.name, protocol, backend: spec.backend, limit: spec.limit, seed: spec.seed, dataPath: spec.dataPath, numFewshot: spec.numFewshot ?? 0 };
        cells.push({ id: cellId(cell), ...cell });
      }
    }
  }
  return { cells, skipped };
}
