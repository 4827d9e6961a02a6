// MultiArith: LLM-Adapters evaluate.py on dataset/MultiArith/test.json (AGI-Edgerunners/LLM-Adapters @816657208af4).
import { mathTask } from './adapters-math.ts';

export const multiarith = mathTask('multiarith', 'number');
