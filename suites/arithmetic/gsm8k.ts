// GSM8K: LLM-Adapters evaluate.py on dataset/GSM8K/test.json (AGI-Edgerunners/LLM-Adapters @816657208af4).
import { mathTask } from './adapters-math.ts';

export const gsm8k = mathTask('gsm8k', 'number');
