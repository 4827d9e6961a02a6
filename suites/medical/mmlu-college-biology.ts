// MMLU college_biology: lm-eval lm_eval/tasks/mmlu/default/mmlu_college_biology.yaml (see ./mmlu.ts for the template).
import { mmluTask } from './mmlu.ts';

export const mmluCollegeBiology = mmluTask('college_biology');
