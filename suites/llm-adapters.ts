// What the LLM-Adapters evaluation shares across its datasets (AGI-Edgerunners/LLM-Adapters @816657208af4,
// commonsense_evaluate.py and evaluate.py): the dataset file layout (a JSON array of
// {instruction, input, output, answer}) and the Alpaca-style prompt the model is given.
import { readJsonArray, str, type LocatedRow } from './load/formats.ts';

export interface AdaptersRow {
  /** Row number in the upstream file (1-based), the document id. */
  id: string;
  instruction: string;
  input: string;
  answer: string;
}

export function adaptersRow(r: LocatedRow, index: number): AdaptersRow {
  return { id: String(index + 1), instruction: str(r, 'instruction'), input: typeof r.row.input === 'string' ? r.row.input : '', answer: str(r, 'answer') };
}

export async function readAdaptersFile(path: string): Promise<{ row: AdaptersRow; where: string }[]> {
  return (await readJsonArray(path)).map((r, i) => ({ row: adaptersRow(r, i), where: r.where }));
}

/**
 * generate_prompt() verbatim, including the 16-space indentation and the trailing space after
 * "request." that its triple-quoted f-string carries: the fine-tuned adapters were trained on it. Both
 * evaluation scripts call it with the instruction only (`evaluate(instruction)`), so tasks do too.
 */
export function alpacaPrompt(instruction: string, input = ''): string {
  const pad = ' '.repeat(16);
  if (input) {
    return (
      'Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n' +
      `${pad}### Instruction:\n${pad}${instruction}\n\n${pad}### Input:\n${pad}${input}\n\n${pad}### Response:\n${pad}`
    );
  }
  return (
    'Below is an instruction that describes a task. Write a response that appropriately completes the request. \n\n' +
    `${pad}### Instruction:\n${pad}${instruction}\n\n${pad}### Response:\n${pad}`
  );
}

/** commonsense_evaluate.py generates at most 32 new tokens; evaluate.py (math) 256. */
export const COMMONSENSE_MAX_TOKENS = 32;
export const MATH_MAX_TOKENS = 256;
