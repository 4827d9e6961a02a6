// The text a drift measurement scores: a local text file, or a task's documents written out as
// the model sees them when the task is evaluated (multiple-choice context + gold continuation, or
// generation prompt + reference answer), so drift is measured on the task's own distribution.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { InputError } from '../../results/errors.ts';
import { resolveTasks } from '../../suites/registry.ts';
import type { Task } from '../../suites/types.ts';

export interface DriftText {
  text: string;
  /** What --data named, for the record. */
  label: string;
  /** Files read (manifest role "data"). */
  files: { path: string; sha256: string }[];
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

function docText(task: Task, doc: unknown): string {
  if (task.multipleChoice) {
    const mc = task.multipleChoice(doc);
    return `${mc.contexts?.[mc.gold] ?? mc.context}${mc.choices[mc.gold] ?? ''}`;
  }
  if (task.generation) {
    const g = task.generation(doc);
    return `${g.prompt}${g.target}`;
  }
  return '';
}

export async function loadDriftText(data: string, options: { offline: boolean; limit?: number; env?: NodeJS.ProcessEnv }): Promise<DriftText> {
  if (existsSync(data)) {
    if (!statSync(data).isFile()) throw new InputError(`--data ${data}: is a directory; give a UTF-8 text file or a task name`);
    const bytes = readFileSync(data);
    const text = bytes.toString('utf8');
    if (text.trim() === '') throw new InputError(`--data ${data}: the file is empty; give a text with at least two tokens`);
    return { text, label: data, files: [{ path: data, sha256: sha256(bytes) }] };
  }
  let task: Task;
  try {
    [task] = resolveTasks([data]) as [Task];
  } catch (e) {
    if (e instanceof InputError) throw new InputError(`--data ${data}: no such file, and ${e.message}`);
    throw e;
  }
  const loaded = await task.load({ offline: options.offline, limit: options.limit, env: options.env });
  if (loaded.status === 'skipped') throw new InputError(`--data ${data}: the task's documents are not available (${loaded.reason})`);
  const text = loaded.docs.map((d) => docText(task, d)).filter((t) => t !== '').join('\n\n');
  if (text === '') throw new InputError(`--data ${data}: the task has no documents to score`);
  return { text, label: task.name, files: loaded.files };
}
