// The commonsense tasks' shared shape. Their bundled data is LLM-Adapters' (AGI-Edgerunners/LLM-Adapters
// @816657208af4 dataset/<name>/test.json), which folds question and options into one `instruction`
// string: "<lead-in>: <question>\n\n<Label>1: <a> <Label>2: <b>...\n\nAnswer format: label1/label2".
// The loglikelihood protocol needs question and options apart (lm-eval scores each option as a
// continuation), so they are cut back out here, at the fixed separators the LLM-Adapters files use.
import { COMMONSENSE_MAX_TOKENS, alpacaPrompt, readAdaptersFile } from '../llm-adapters.ts';
import { rowError } from '../load/formats.ts';
import { loadDocs, type DataSpec } from '../load/source.ts';
import { extractFirstOption } from '../score.ts';
import type { GenerationPrompt, MultipleChoice, Protocol, Task } from '../types.ts';

export interface CommonsenseDoc {
  id: string;
  /** The LLM-Adapters instruction (the generation prompt's body). */
  instruction: string;
  /** LLM-Adapters' answer word: 'answer2', 'solution1', 'true'... */
  answer: string;
  question: string;
  options: string[];
  gold: number;
}

export interface InlineLayout {
  /** The instruction's lead-in up to and including ': '. */
  prefix: string;
  /** 'Answer', 'Solution', 'Ending', 'Option'; '' when the options are only the answer words (BoolQ). */
  label: string;
  /** What separates one option from the next label ('\n\n' for piqa, ' ' elsewhere). */
  between: string;
  /** What precedes 'Answer format:' (' ' for winogrande, '\n\n' elsewhere). */
  tail: string;
}

/** Splits an LLM-Adapters instruction into question and options; null when it does not have the layout. */
export function splitInstruction(instruction: string, layout: InlineLayout): { question: string; options: string[]; words: string[] } | null {
  if (!instruction.startsWith(layout.prefix)) return null;
  const formatAt = instruction.lastIndexOf(`${layout.tail}Answer format: `);
  if (formatAt < 0) return null;
  const words = instruction.slice(formatAt + layout.tail.length + 'Answer format: '.length).split('/');
  const body = instruction.slice(layout.prefix.length, formatAt);
  // BoolQ has no option lines: the answer words are the options.
  if (layout.label === '') return { question: body, options: words, words };
  const first = body.indexOf(`\n\n${layout.label}1: `);
  if (first < 0) return null;
  const question = body.slice(0, first);
  const options: string[] = [];
  let start = first + `\n\n${layout.label}1: `.length;
  for (let k = 2; k <= words.length; k++) {
    const marker = `${layout.between}${layout.label}${k}: `;
    const at = body.indexOf(marker, start);
    if (at < 0) return null;
    options.push(body.slice(start, at));
    start = at + marker.length;
  }
  options.push(body.slice(start));
  return { question, options, words };
}

export async function readInlineDocs(path: string, layout: InlineLayout, check?: (doc: CommonsenseDoc) => string | null): Promise<CommonsenseDoc[]> {
  return (await readAdaptersFile(path)).map(({ row, where }) => {
    const split = splitInstruction(row.instruction, layout);
    if (!split) throw rowError(where, `instruction is not in the LLM-Adapters layout "${layout.prefix}... ${layout.label}1: ... Answer format: ..."`);
    const gold = split.words.indexOf(row.answer);
    if (gold < 0) throw rowError(where, `answer "${row.answer}" is not one of ${split.words.join('/')}`);
    const doc = { id: row.id, instruction: row.instruction, answer: row.answer, question: split.question, options: split.options, gold };
    const problem = check?.(doc);
    if (problem) throw rowError(where, problem);
    return doc;
  });
}

export interface CommonsenseTaskSpec {
  name: string;
  /** The LLM-Adapters file's folder name upstream and the bundled folder under suites/data/commonsense. */
  bundledDir: string;
  layout: InlineLayout;
  /** Every answer word upstream's extract_answer looks for, in its regex's order. */
  answerWords: readonly string[];
  /** lm-eval's doc_to_text + doc_to_choice for this task. */
  toMultipleChoice(doc: CommonsenseDoc): MultipleChoice;
  /** lm-eval's metric_list for the task (winogrande and siqa report acc only). */
  loglikelihoodMetrics: readonly string[];
  /** A Hub source in lm-eval's dataset format, when the task has one (hellaswag). */
  hub?: DataSpec<CommonsenseDoc>['hub'];
  parseHub?: (path: string) => Promise<CommonsenseDoc[]>;
  /** A task-specific problem with a parsed document (winogrande: no blank), or null. */
  check?: (doc: CommonsenseDoc) => string | null;
}

/** LLM-Adapters' generation protocol, common to every commonsense task. */
export function commonsenseGeneration(doc: CommonsenseDoc): GenerationPrompt {
  return { prompt: alpacaPrompt(doc.instruction), until: [], maxTokens: COMMONSENSE_MAX_TOKENS, target: doc.answer };
}

export function commonsenseTask(spec: CommonsenseTaskSpec): Task<CommonsenseDoc> {
  const protocols: readonly Protocol[] = ['loglikelihood', 'generation'];
  return {
    name: spec.name,
    suite: 'commonsense',
    protocols,
    metrics: { loglikelihood: spec.loglikelihoodMetrics, generation: ['acc'] },
    load: (options) =>
      loadDocs<CommonsenseDoc>(
        {
          task: spec.name,
          bundled: { dir: `commonsense/${spec.bundledDir}`, files: ['test.json'] },
          ...(spec.hub ? { hub: spec.hub } : {}),
          parse: async ([path]) => {
            if (path === undefined) return [];
            if (path.endsWith('.parquet') && spec.parseHub) return spec.parseHub(path);
            return readInlineDocs(path, spec.layout, spec.check);
          },
        },
        options,
      ),
    docId: (doc) => doc.id,
    multipleChoice: spec.toMultipleChoice,
    generation: commonsenseGeneration,
    scoreGeneration: (doc, response) => ({ acc: extractFirstOption(response, spec.answerWords) === doc.answer ? 1 : 0 }),
  };
}
