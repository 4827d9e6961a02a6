// mawps: LLM-Adapters evaluate.py on dataset/mawps/test.json (AGI-Edgerunners/LLM-Adapters @816657208af4).
// Upstream's extract_answer_number lists multiarith/addsub/singleeq/gsm8k/svamp and raises for mawps;
// its label is a number like the others', so the same last-number rule is applied.
import { mathTask } from './adapters-math.ts';

export const mawps = mathTask('mawps', 'number');
