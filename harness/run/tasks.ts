// Where the run engine finds tasks: a module exporting `TASKS: Task[]` (suites/registry.ts by
// default; tests pass their own). The parent process resolves names with it and each cell's child
// process imports the same module to get its task back, so a task object never crosses a process
// boundary — only its name does.
import { distance } from 'fastest-levenshtein';
import { pathToFileURL } from 'node:url';
import { InputError } from '../../results/errors.ts';
import { SUITES, type SuiteName, type Task } from '../../suites/types.ts';

/** The registry the other suites files build (a URL, so it imports the same from any process). */
export const DEFAULT_TASK_MODULE = new URL('../../suites/registry.ts', import.meta.url).href;

function isTask(value: unknown): value is Task {
  if (typeof value !== 'object' || value === null) return false;
  const t = value as Partial<Task>;
  return typeof t.name === 'string' && typeof t.suite === 'string' && Array.isArray(t.protocols) && typeof t.load === 'function' && typeof t.docId === 'function';
}

/** Imports `moduleRef` (file URL or path) and returns its `TASKS`, checked to look like Tasks. */
export async function importTasks(moduleRef: string = DEFAULT_TASK_MODULE): Promise<Task[]> {
  const url = /^[a-z]+:\/\//.test(moduleRef) ? moduleRef : pathToFileURL(moduleRef).href;
  let mod: { TASKS?: unknown };
  try {
    mod = (await import(url)) as { TASKS?: unknown };
  } catch (error) {
    throw new Error(`cannot load the task registry ${url}: ${(error as Error).message}`);
  }
  if (!Array.isArray(mod.TASKS) || !mod.TASKS.every(isTask)) throw new Error(`${url}: expected an exported TASKS array of Task objects (suites/types.ts)`);
  return mod.TASKS;
}

function suggest(name: string, candidates: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = distance(name.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best !== null && bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : null;
}

/**
 * `--suite` and `--task` -> tasks, in registry order, each once. Neither given means every task.
 * Unknown names are input errors with a did-you-mean.
 */
export function selectTasks(all: readonly Task[], suites: readonly string[], names: readonly string[]): Task[] {
  for (const s of suites) {
    if (!(SUITES as readonly string[]).includes(s)) {
      const hint = suggest(s, SUITES);
      throw new InputError(`--suite ${s}: unknown suite${hint ? `; did you mean "${hint}"?` : ''} (expected one of ${SUITES.join(', ')})`);
    }
  }
  const byName = new Map(all.map((t) => [t.name, t]));
  for (const n of names) {
    if (!byName.has(n)) {
      const hint = suggest(n, [...byName.keys()]);
      throw new InputError(`--task ${n}: unknown task${hint ? `; did you mean "${hint}"?` : ''} (\`llama-eval run --help\` lists the suites; every task is a file in suites/<suite>/)`);
    }
  }
  if (suites.length === 0 && names.length === 0) return [...all];
  const wanted = new Set<string>(names);
  const wantedSuites = new Set<SuiteName>(suites as SuiteName[]);
  return all.filter((t) => wanted.has(t.name) || wantedSuites.has(t.suite));
}
