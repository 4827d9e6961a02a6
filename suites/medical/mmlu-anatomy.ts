// MMLU anatomy: lm-eval lm_eval/tasks/mmlu/default/mmlu_anatomy.yaml (see ./mmlu.ts for the template).
import { mmluTask } from './mmlu.ts';

export const mmluAnatomy = mmluTask('anatomy');
