// LegalBench (Guha et al., NeurIPS 2023; HazyResearch/legalbench @ce482446b8ea). One task per LegalBench
// task; the list is ./legalbench-tasks.ts. Protocol: generation, as lm-eval's
// lm_eval/tasks/legalbench/_legalbench_template_yaml runs it (generate_until, until "\n",
// max_gen_toks 15, exact_match with ignore_case and ignore_punctuation after stripping) and as the
// LegalBench paper does, with the paper's own prompt: the task's base_prompt.txt (its few-shot
// demonstrations included), whose {{column}} slots are filled from the row.
// Data: the test split, on the Hub only (nguha/legalbench; a loading-script dataset, so its parquet
// export refs/convert/parquet <task>/test/0000.parquet is read); offline and uncached it is skipped.
// `--data` takes a test.tsv/train.tsv in the repository's layout (index, answer, text columns).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readRows, rowError, str, type LocatedRow } from '../load/formats.ts';
import { BUNDLED_DATA_DIR, loadDocs } from '../load/source.ts';
import { legalExactMatch } from '../score.ts';
import type { Task } from '../types.ts';
import type { LegalbenchTaskName } from './legalbench-tasks.ts';

export interface LegalbenchDoc {
  id: string;
  answer: string;
  /** base_prompt.txt with this row's columns filled in. */
  prompt: string;
}

/** LegalBench's own template syntax: `{{column}}`, replaced by that column's text. */
export function fillBasePrompt(template: string, r: LocatedRow): string {
  return template.replace(/\{\{(.*?)\}\}/g, (_m, column: string) => {
    const value = r.row[column];
    if (typeof value !== 'string') throw rowError(r.where, `column "${column}" (used by base_prompt.txt) missing`);
    return value;
  });
}

export function basePromptPath(task: string): string {
  return join(BUNDLED_DATA_DIR, 'legal', 'legalbench', task, 'base_prompt.txt');
}

export async function readLegalbench(task: string, path: string): Promise<{ docs: LegalbenchDoc[]; alsoRead: string[] }> {
  const templatePath = basePromptPath(task);
  const template = await readFile(templatePath, 'utf8');
  const docs = (await readRows(path)).map((r) => ({ id: str(r, 'index'), answer: str(r, 'answer'), prompt: fillBasePrompt(template, r) }));
  return { docs, alsoRead: [templatePath] };
}

export const LEGALBENCH_MAX_TOKENS = 15;

export function legalbenchTask(task: LegalbenchTaskName): Task<LegalbenchDoc> {
  const name = `legalbench_${task}`;
  return {
    name,
    suite: 'legal',
    protocols: ['generation'],
    metrics: { generation: ['exact_match'] },
    load: (options) =>
      loadDocs(
        {
          task: name,
          hub: { repo: 'nguha/legalbench', revision: 'refs/convert/parquet', files: [`${task}/test/0000.parquet`] },
          parse: async ([path]) => (path === undefined ? [] : readLegalbench(task, path)),
        },
        options,
      ),
    docId: (doc) => doc.id,
    generation: (doc) => ({ prompt: doc.prompt, until: ['\n'], maxTokens: LEGALBENCH_MAX_TOKENS, target: doc.answer }),
    scoreGeneration: (doc, response) => ({ exact_match: legalExactMatch(response, doc.answer) }),
  };
}
