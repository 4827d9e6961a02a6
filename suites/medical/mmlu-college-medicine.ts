// MMLU college_medicine: lm-eval lm_eval/tasks/mmlu/default/mmlu_college_medicine.yaml (see ./mmlu.ts for the template).
import { mmluTask } from './mmlu.ts';

export const mmluCollegeMedicine = mmluTask('college_medicine');
