// SVAMP: LLM-Adapters evaluate.py on dataset/SVAMP/test.json (AGI-Edgerunners/LLM-Adapters @816657208af4).
import { mathTask } from './adapters-math.ts';

export const svamp = mathTask('svamp', 'number');
