// AddSub: LLM-Adapters evaluate.py on dataset/AddSub/test.json (AGI-Edgerunners/LLM-Adapters @816657208af4).
import { mathTask } from './adapters-math.ts';

export const addsub = mathTask('addsub', 'number');
