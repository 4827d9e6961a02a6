// Every task, by suite, and name resolution for `--suite` / `--tasks`: suite names expand to their
// tasks, task names stand for themselves, duplicates are dropped keeping the first position, and an
// unknown name is an InputError with the closest known names (lm-eval's registry does the same).
import { distance } from 'fastest-levenshtein';
import { InputError } from '../results/errors.ts';
import { aqua } from './arithmetic/aqua.ts';
import { addsub } from './arithmetic/addsub.ts';
import { gsm8k } from './arithmetic/gsm8k.ts';
import { mawps } from './arithmetic/mawps.ts';
import { multiarith } from './arithmetic/multiarith.ts';
import { singleeq } from './arithmetic/singleeq.ts';
import { svamp } from './arithmetic/svamp.ts';
import { arcChallenge } from './commonsense/arc-challenge.ts';
import { arcEasy } from './commonsense/arc-easy.ts';
import { boolq } from './commonsense/boolq.ts';
import { hellaswag } from './commonsense/hellaswag.ts';
import { openbookqa } from './commonsense/openbookqa.ts';
import { piqa } from './commonsense/piqa.ts';
import { siqa } from './commonsense/siqa.ts';
import { winogrande } from './commonsense/winogrande.ts';
import { casehold } from './legal/casehold.ts';
import { legalbenchTask } from './legal/legalbench.ts';
import { LEGALBENCH_TASKS } from './legal/legalbench-tasks.ts';
import { medmcqa } from './medical/medmcqa.ts';
import { medqa } from './medical/medqa.ts';
import { mmluAnatomy } from './medical/mmlu-anatomy.ts';
import { mmluClinicalKnowledge } from './medical/mmlu-clinical-knowledge.ts';
import { mmluCollegeBiology } from './medical/mmlu-college-biology.ts';
import { mmluCollegeMedicine } from './medical/mmlu-college-medicine.ts';
import { mmluMedicalGenetics } from './medical/mmlu-medical-genetics.ts';
import { mmluProfessionalMedicine } from './medical/mmlu-professional-medicine.ts';
import { pubmedqa } from './medical/pubmedqa.ts';
import { medicalVqaClosed, medicalVqaOpen } from './medical-vqa/medical-vqa.ts';
import { SUITES, type SuiteName, type Task } from './types.ts';

// Task<D> is invariant in D through its methods; the registry holds them behind the erased type, and
// the run engine only ever passes a task's own documents back to it.
function erase<D>(task: Task<D>): Task {
  return task as unknown as Task;
}

export const TASKS: readonly Task[] = [
  boolq, piqa, siqa, hellaswag, winogrande, arcEasy, arcChallenge, openbookqa,
  gsm8k, aqua, svamp, mawps, addsub, singleeq, multiarith,
  casehold, ...LEGALBENCH_TASKS.map(legalbenchTask),
  pubmedqa, medqa, medmcqa,
  mmluAnatomy, mmluClinicalKnowledge, mmluCollegeBiology, mmluCollegeMedicine, mmluMedicalGenetics, mmluProfessionalMedicine,
  medicalVqaClosed, medicalVqaOpen,
].map((t) => erase(t as Task<unknown>));

export const SUITE_TASKS: Record<SuiteName, string[]> = Object.fromEntries(
  SUITES.map((suite) => [suite, TASKS.filter((t) => t.suite === suite).map((t) => t.name)]),
) as Record<SuiteName, string[]>;

const BY_NAME = new Map(TASKS.map((t) => [t.name, t]));

function isSuite(name: string): name is SuiteName {
  return (SUITES as readonly string[]).includes(name);
}

/** The closest known names (suites and tasks) to `name`, nearest first. */
export function didYouMean(name: string, count = 3): string[] {
  const known = [...SUITES, ...BY_NAME.keys()];
  return known
    .map((k) => ({ k, d: distance(name.toLowerCase(), k) }))
    .sort((a, b) => a.d - b.d || a.k.localeCompare(b.k))
    .slice(0, count)
    .map((x) => x.k);
}

/** Suite and task names -> tasks, in the given order, each once. */
export function resolveTasks(names: readonly string[]): Task[] {
  const out: Task[] = [];
  const seen = new Set<string>();
  const add = (task: Task): void => {
    if (!seen.has(task.name)) {
      seen.add(task.name);
      out.push(task);
    }
  };
  for (const raw of names) {
    const name = raw.trim();
    if (isSuite(name)) {
      for (const taskName of SUITE_TASKS[name]) add(BY_NAME.get(taskName) as Task);
      continue;
    }
    const task = BY_NAME.get(name);
    if (!task) {
      throw new InputError(`unknown task or suite "${name}"; did you mean ${didYouMean(name).join(', ')}? (suites: ${SUITES.join(', ')}; docs/suites.md lists the tasks)`);
    }
    add(task);
  }
  return out;
}
