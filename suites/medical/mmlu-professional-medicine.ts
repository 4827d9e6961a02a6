// MMLU professional_medicine: lm-eval lm_eval/tasks/mmlu/default/mmlu_professional_medicine.yaml (see ./mmlu.ts for the template).
import { mmluTask } from './mmlu.ts';

export const mmluProfessionalMedicine = mmluTask('professional_medicine');
