// The arithmetic tasks as LLM-Adapters evaluates them (AGI-Edgerunners/LLM-Adapters @816657208af4
// evaluate.py): the Alpaca prompt around the problem, up to 256 new tokens, then the last number in the
// response against the numeric label within 0.001 (AQuA: the first letter A-E against the option letter).
// There is no loglikelihood protocol: the answers are free-form numbers.
import { MATH_MAX_TOKENS, alpacaPrompt, readAdaptersFile } from '../llm-adapters.ts';
import { rowError } from '../load/formats.ts';
import { loadDocs } from '../load/source.ts';
import { extractAnswerLetter, extractLastNumber, numericMatch } from '../score.ts';
import type { Task } from '../types.ts';

export interface MathDoc {
  id: string;
  instruction: string;
  /** The label as upstream stores it: a number as a string ('576.0'), or for AQuA a letter A-E. */
  answer: string;
}

export type AnswerKind = 'number' | 'letter';

export async function readMathDocs(path: string, kind: AnswerKind): Promise<MathDoc[]> {
  return (await readAdaptersFile(path)).map(({ row, where }) => {
    if (kind === 'number' && !Number.isFinite(Number(row.answer))) throw rowError(where, `answer "${row.answer}" is not a number`);
    if (kind === 'letter' && !/^[A-E]$/.test(row.answer)) throw rowError(where, `answer "${row.answer}" is not an option letter A-E`);
    return { id: row.id, instruction: row.instruction, answer: row.answer };
  });
}

export function scoreMath(kind: AnswerKind, doc: MathDoc, response: string): Record<string, number> {
  const correct = kind === 'letter' ? extractAnswerLetter(response) === doc.answer : numericMatch(Number(doc.answer), extractLastNumber(response));
  return { acc: correct ? 1 : 0 };
}

/** One LLM-Adapters math dataset; its bundled sample is suites/data/arithmetic/<name>/test.json. */
export function mathTask(name: string, kind: AnswerKind): Task<MathDoc> {
  return {
    name,
    suite: 'arithmetic',
    protocols: ['generation'],
    metrics: { generation: ['acc'] },
    load: (options) =>
      loadDocs<MathDoc>(
        { task: name, bundled: { dir: `arithmetic/${name}`, files: ['test.json'] }, parse: async ([path]) => (path === undefined ? [] : readMathDocs(path, kind)) },
        options,
      ),
    docId: (doc) => doc.id,
    generation: (doc) => ({ prompt: alpacaPrompt(doc.instruction), until: [], maxTokens: MATH_MAX_TOKENS, target: doc.answer }),
    scoreGeneration: (doc, response) => scoreMath(kind, doc, response),
  };
}
