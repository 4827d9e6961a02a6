// AQuA: LLM-Adapters evaluate.py on dataset/AQuA/test.json (AGI-Edgerunners/LLM-Adapters @816657208af4).
// AQuA is scored by extract_answer_letter (first of A-E anywhere in the response) against the letter.
import { mathTask } from './adapters-math.ts';

export const aqua = mathTask('aqua', 'letter');
