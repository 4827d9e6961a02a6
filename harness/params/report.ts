// The `params` report of a model (+ PEFT): the JSON contract of `llama-eval params --json`.
import { InputError } from '../errors.ts';
import type { ModelArch } from '../../runners/arch.ts';
import type { ResolvedModel } from '../zoo.ts';
import { countModelParams } from './index.ts';
import { applyPeftToCount, type PeftCount } from './peft.ts';
import type { ParamCount } from './types.ts';

export interface ParamsReport {
  model: string;
  total_params: number;
  active_params: number;
  embedding_params: number;
  trainable_params: number;
  vision_params?: number;
  peft: PeftCount['peft'] | null;
  components: Record<string, number>;
}

export interface ParamsBreakdown {
  arch: ModelArch;
  base: ParamCount;
  peft: PeftCount | null;
  report: ParamsReport;
}

function prefixKeys(prefix: string, record: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [`${prefix}${k}`, v]));
}

export function paramsBreakdown(model: Pick<ResolvedModel, 'id' | 'arch'>, peftArg: string | undefined): ParamsBreakdown {
  const arch = model.arch;
  if (!arch) {
    throw new InputError(`${model.id} has published figures only (its weights were never released); exact counts need a config (see \`llama-eval models\`)`);
  }
  const base = countModelParams(arch);
  const peft = peftArg ? applyPeftToCount(peftArg, arch) : null;
  const added = peft?.addedParams ?? 0;
  const report: ParamsReport = {
    model: model.id,
    // The adapter's own parameters join the total; parameters it only unfreezes are already in it.
    total_params: base.total + added,
    active_params: base.active + added,
    embedding_params: base.embedding,
    // Without PEFT every parameter trains (full fine-tuning).
    trainable_params: peft ? peft.trainableParams : base.total,
    ...(base.vision !== null ? { vision_params: base.vision } : {}),
    peft: peft?.peft ?? null,
    components: { ...base.components, ...(peft ? prefixKeys('peft.', peft.components) : {}) },
  };
  return { arch, base, peft, report };
}
