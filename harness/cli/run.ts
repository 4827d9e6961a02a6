// `llama-eval run`: flags -> evaluate() (harness/run) -> table or JSON. Exit code 1 when any cell
// failed: the run itself completed, but its results are incomplete.
import { InputError } from '../errors.ts';
import { parsePeft, peftLabel } from '../peft/index.ts';
import type { RemoteOptions } from '../../runners/open.ts';
import type { Backend } from '../../runners/types.ts';
import { PROTOCOLS, type Protocol } from '../../suites/types.ts';
import { evaluate } from '../run/evaluate.ts';
import { progressFor } from '../run/progress.ts';
import { summaryTable } from '../run/summary.ts';
import type { CliIO } from './command.ts';
import { printJson, printTable } from './output.ts';
import { RUN_DEFAULT_MODEL } from './run-args.ts';

const strings = (value: unknown): string[] => (Array.isArray(value) ? value.map(String) : value === undefined ? [] : [String(value)]);

function positiveInt(value: unknown, flag: string): number | null {
  if (value === undefined) return null;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) throw new InputError(`${flag}: expected a positive integer, got ${String(value)}`);
  return value;
}

export async function run(args: Record<string, unknown>, io: CliIO): Promise<number> {
  const backend = String(args.backend ?? 'ort') as Backend;
  const protocol = args.protocol === undefined ? null : String(args.protocol);
  if (protocol !== null && !(PROTOCOLS as readonly string[]).includes(protocol)) throw new InputError(`--protocol ${protocol}: expected one of ${PROTOCOLS.join(', ')}`);
  const pefts = strings(args.peft).map((arg) => ({ arg, label: peftLabel(parsePeft(arg)) }));
  if (pefts.length > 0 && (backend === 'llamacpp' || backend === 'openai')) {
    throw new InputError(`--peft: the ${backend} backend runs the model as given and cannot apply adapters; use --backend ort or reference, or serve/merge the adapter yourself`);
  }
  let remote: RemoteOptions | undefined;
  if (backend === 'openai') {
    if (args.baseUrl === undefined) throw new InputError('--backend openai needs --base-url (the server root, e.g. http://localhost:8000)');
    if (strings(args.model).length === 0) throw new InputError('--backend openai needs --model: the name the server serves the model under (GET /v1/models lists them)');
    remote = { baseUrl: String(args.baseUrl), apiKeyEnv: args.apiKeyEnv === undefined ? null : String(args.apiKeyEnv) };
  }
  const seed = args.seed === undefined ? 1234 : Number(args.seed);
  if (!Number.isInteger(seed)) throw new InputError(`--seed: expected an integer, got ${String(args.seed)}`);
  let models = strings(args.model);
  const defaultNote = `no --model given: evaluating the embedded default ${RUN_DEFAULT_MODEL} (tiny random weights, so scores are near chance)`;
  if (models.length === 0) {
    models = [RUN_DEFAULT_MODEL];
    io.err(`llama-eval run: ${defaultNote}\n`);
  }
  const outDir = args.out === undefined ? `runs/${new Date().toISOString().replace(/[:.]/g, '-')}` : String(args.out);
  const offline = args.offline === true || process.env.HF_HUB_OFFLINE === '1';
  const { summary, resumedCells } = await evaluate({
    suites: strings(args.suite), tasks: strings(args.task), models, pefts, backend,
    protocol: protocol as Protocol | null, limit: positiveInt(args.limit, '--limit'), seed,
    dataPath: args.data === undefined ? null : String(args.data), offline, outDir,
    remote, progress: progressFor(process.stderr, io.err),
  });
  if (resumedCells > 0) io.err(`llama-eval run: resumed ${outDir}: ${resumedCells} completed cell(s) were not run again\n`);
  if (args.json) {
    printJson(io, summary);
  } else {
    const { head, rows } = summaryTable(summary);
    if (rows.length > 0) printTable(io, head, rows);
    for (const s of summary.skipped) io.out(`skipped ${s.task} (${s.model} / ${s.peft ?? 'base'}): ${s.reason}\n`);
    for (const e of summary.errors) io.out(`FAILED ${e.task} (${e.model} / ${e.peft ?? 'base'}): ${e.message}\n`);
    if (strings(args.model).length === 0) io.out(`${defaultNote}\n`);
    io.out(`records: ${outDir}/records.jsonl  summary: ${outDir}/results.json\n`);
  }
  return summary.errors.length > 0 ? 1 : 0;
}
