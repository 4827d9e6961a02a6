// MMLU medical_genetics: lm-eval lm_eval/tasks/mmlu/default/mmlu_medical_genetics.yaml (see ./mmlu.ts for the template).
import { mmluTask } from './mmlu.ts';

export const mmluMedicalGenetics = mmluTask('medical_genetics');
