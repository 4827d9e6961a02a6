// MMLU clinical_knowledge: lm-eval lm_eval/tasks/mmlu/default/mmlu_clinical_knowledge.yaml (see ./mmlu.ts for the template).
import { mmluTask } from './mmlu.ts';

export const mmluClinicalKnowledge = mmluTask('clinical_knowledge');
