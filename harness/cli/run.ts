// `llama-eval run`: flags -> evaluate() (harness/run) -> table or JSON. Exit code 1 when any cell
// failed: the run itself completed, but its results are incomplete.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.ts';
import { defaultResponseCacheDir } from '../../runners/cached.ts';
import { readRecords } from '../../results/store.ts';
import { parsePeft, peftLabel } from '../peft/index.ts';
import type { RemoteOptions } from '../../runners/open.ts';
import type { Backend } from '../../runners/types.ts';
import { PROTOCOLS, type Protocol } from '../../suites/types.ts';
import { evaluate } from '../run/evaluate.ts';
import type { Shard } from '../run/plan.ts';
import { progressFor } from '../run/progress.ts';
import type { CliIO } from './command.ts';
import { printJson } from './output.ts';
import { printRunSummary } from './run-output.ts';
import { RUN_DEFAULT_MODEL } from './run-args.ts';

const strings = (value: unknown): string[] => (Array.isArray(value) ? value.map(String) : value === undefined ? [] : [String(value)]);
/** Repeated flags and comma lists alike: `--tasks a,b`, `--task a --task b`, `--task a b`. */
const names = (value: unknown): string[] => strings(value).flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s !== '');

function nonNegativeInt(value: unknown, flag: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw new InputError(`${flag}: expected a whole number 0 or more, got ${String(value)}`);
  return value;
}

/** `--resume` is explicit: the directory must hold a run (a manifest record) to continue. */
function checkResumable(outDir: string | undefined): void {
  if (outDir === undefined) throw new InputError('--resume needs --out <dir>: the directory of the run to continue');
  const records = join(outDir, 'records.jsonl');
  if (!existsSync(records)) throw new InputError(`--resume: ${records} does not exist; give the --out of an earlier run, or drop --resume to start a new one`);
  if (!readRecords(records).records.some((r) => r.kind === 'manifest')) {
    throw new InputError(`--resume: ${records} holds no manifest record, so it is not a llama-eval run; give the --out of an earlier run, or drop --resume`);
  }
}

function positiveInt(value: unknown, flag: string): number | null {
  if (value === undefined) return null;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) throw new InputError(`${flag}: expected a positive integer, got ${String(value)}`);
  return value;
}

/** `--shard i/N`: 0 <= i < N, both whole numbers. */
export function parseShard(value: unknown): Shard | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+)\/(\d+)$/.exec(String(value).trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index >= count) {
    throw new InputError(`--shard ${String(value)}: expected i/N with 0 <= i < N (e.g. --shard 0/4 on the first of four machines; $SLURM_ARRAY_TASK_ID or $JOB_COMPLETION_INDEX give i)`);
  }
  return { index, count };
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
    const timeout = args.requestTimeout;
    if (timeout !== undefined) {
      if (typeof timeout !== 'number' || !(timeout > 0)) throw new InputError(`--request-timeout: expected seconds above 0, got ${String(timeout)}`);
      remote.timeoutMs = timeout * 1000;
    }
    if (args.retries !== undefined) remote.maxRetries = nonNegativeInt(args.retries, '--retries');
  } else if (args.requestTimeout !== undefined || args.retries !== undefined) {
    throw new InputError(`--request-timeout/--retries apply to --backend openai only (this run uses --backend ${backend}); drop them`);
  }
  const shard = parseShard(args.shard);
  const seed = args.seed === undefined ? 1234 : Number(args.seed);
  if (!Number.isInteger(seed)) throw new InputError(`--seed: expected an integer, got ${String(args.seed)}`);
  let models = strings(args.model);
  const defaultNote = `no --model given: evaluating the embedded default ${RUN_DEFAULT_MODEL} (tiny random weights, so scores are near chance)`;
  if (models.length === 0) {
    models = [RUN_DEFAULT_MODEL];
    io.err(`llama-eval run: ${defaultNote}\n`);
  }
  if (args.resume === true) checkResumable(args.out === undefined ? undefined : String(args.out));
  const numFewshot = nonNegativeInt(args.numFewshot ?? 0, '--num-fewshot');
  const dtype = args.dtype === undefined || args.dtype === 'fp32' ? 'fp32' : args.dtype === 'fp16' ? 'fp16' : null;
  if (dtype === null) throw new InputError(`--dtype ${String(args.dtype)}: expected fp32 or fp16`);
  if (dtype === 'fp16' && backend !== 'ort') throw new InputError(`--dtype fp16: only the ort backend builds an fp16 graph (this run uses --backend ${backend})`);
  if (dtype === 'fp16' && pefts.length > 0) throw new InputError('--dtype fp16 with --peft: adapters run in the fp32 graph only; drop one of them');
  const batchSize = positiveInt(args.batchSize, '--batch-size') ?? 1;
  const cacheDir = args.cache === false ? null : args.cacheDir === undefined ? defaultResponseCacheDir() : String(args.cacheDir);
  const outDir = args.out === undefined ? `runs/${new Date().toISOString().replace(/[:.]/g, '-')}` : String(args.out);
  const offline = args.offline === true || process.env.HF_HUB_OFFLINE === '1';
  const { summary, resumedCells } = await evaluate({
    suites: names(args.suite), tasks: names(args.task), models, pefts, backend, numFewshot, dtype, batchSize, cacheDir,
    protocol: protocol as Protocol | null, limit: positiveInt(args.limit, '--limit'), seed,
    dataPath: args.data === undefined ? null : String(args.data), offline, outDir,
    remote, shard, progress: progressFor(process.stderr, io.err),
  });
  if (resumedCells > 0) io.err(`llama-eval run: resumed ${outDir}: ${resumedCells} completed cell(s) were not run again\n`);
  if (args.history !== false) await recordHistory(outDir, args.db === undefined ? undefined : String(args.db), io);
  if (args.json) {
    printJson(io, summary);
  } else {
    printRunSummary(io, summary);
    if (strings(args.model).length === 0) io.out(`${defaultNote}\n`);
    io.out(`records: ${outDir}/records.jsonl  summary: ${outDir}/results.json\n`);
  }
  return summary.errors.length > 0 ? 1 : 0;
}

/**
 * Ingests the finished run into the DuckDB history store (docs/history.md). The records are already
 * on disk, so a store that cannot be opened (locked past its timeout, corrupt, newer schema) costs a
 * warning naming the fix, never the run.
 */
async function recordHistory(outDir: string, db: string | undefined, io: CliIO): Promise<void> {
  const [{ ingestRuns }, { defaultHistoryPath }] = await Promise.all([import('../history/ingest.ts'), import('../history/store.ts')]);
  const path = db ?? defaultHistoryPath();
  try {
    await ingestRuns(path, [outDir]);
    io.err(`llama-eval run: added to the run history ${path} (--no-history to skip)\n`);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    io.err(`llama-eval run: warning: the run history was not updated (${message}); the records are complete, ingest later with: llama-eval history ingest ${outDir}\n`);
  }
}
