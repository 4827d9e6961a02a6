// Few-shot prompts, as lm-evaluation-harness lays them out (lm_eval/api/task.py build_qa_turn and
// multiple_input_context): description, then for each example its question, the target delimiter and
// its gold answer, each followed by "\n\n", then the document's own question. The examples are drawn
// from the task's documents other than the one being asked (lm-eval's ContextSampler.rm_eval_doc).
// The draw is seeded per (seed, document id), not from one stream as lm-eval's random.Random(1234):
// a resumed run then rebuilds exactly the prompts it had, whatever order the documents run in.
import { createHash } from 'node:crypto';
import { InputError } from '../results/errors.ts';
import type { GenerationPrompt, MultipleChoice } from './types.ts';

export const FEWSHOT_DELIMITER = '\n\n';

/** Returns a function giving `k` distinct documents for a document id, never that document itself. */
export function fewshotSampler<D>(pool: readonly D[], docId: (doc: D) => string, seed: number): (forDoc: string, k: number) => D[] {
  const ids = pool.map(docId);
  return (forDoc, k) => {
    if (k === 0) return [];
    const eligible = ids.filter((id) => id !== forDoc).length;
    if (!Number.isInteger(k) || k < 0 || k > eligible) {
      throw new InputError(`--num-fewshot ${k}: expected an integer from 0 to ${eligible} (the task's other documents)`);
    }
    const chosen = new Set<number>();
    // Counter-mode sha256 as the random stream: 6 bytes -> an index; repeats and the document itself are redrawn.
    for (let counter = 0; chosen.size < k; counter++) {
      const digest = createHash('sha256').update(`${seed}\0${forDoc}\0${counter}`).digest();
      const index = digest.readUIntBE(0, 6) % pool.length;
      if (ids[index] !== forDoc) chosen.add(index);
    }
    return [...chosen].map((i) => pool[i] as D);
  };
}

/** The text an example contributes: its question (its gold context for per-choice contexts) and gold answer. */
function exampleText(example: MultipleChoice): string {
  const prefix = example.description ?? '';
  const question = example.contexts ? (example.contexts[example.gold] as string) : example.context;
  return question.slice(question.startsWith(prefix) ? prefix.length : 0) + example.choices[example.gold];
}

/** `mc` with the examples placed between its description and its question. */
export function withFewshot(mc: MultipleChoice, examples: readonly MultipleChoice[]): MultipleChoice {
  if (examples.length === 0) return mc;
  const prefix = mc.description ?? '';
  const shots = examples.map((e) => exampleText(e) + FEWSHOT_DELIMITER).join('');
  const insert = (text: string): string => prefix + shots + text.slice(text.startsWith(prefix) ? prefix.length : 0);
  return { ...mc, context: insert(mc.context), ...(mc.contexts ? { contexts: mc.contexts.map(insert) } : {}) };
}

/**
 * `prompt` with worked examples before it, as lm-eval lays out generate_until tasks: each example's
 * prompt, the target delimiter (a space, none when the prompt already ends in whitespace, as the
 * LLM-Adapters template's "### Response:\n" does), its reference answer, then "\n\n".
 */
export function withFewshotGeneration(prompt: GenerationPrompt, examples: readonly GenerationPrompt[]): GenerationPrompt {
  if (examples.length === 0) return prompt;
  const shots = examples.map((e) => `${e.prompt}${/\s$/.test(e.prompt) ? '' : ' '}${e.target}${FEWSHOT_DELIMITER}`).join('');
  return { ...prompt, prompt: shots + prompt.prompt };
}
