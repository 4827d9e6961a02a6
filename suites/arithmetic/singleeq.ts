// SingleEq: LLM-Adapters evaluate.py on dataset/SingleEq/test.json (AGI-Edgerunners/LLM-Adapters @816657208af4).
import { mathTask } from './adapters-math.ts';

export const singleeq = mathTask('singleeq', 'number');
