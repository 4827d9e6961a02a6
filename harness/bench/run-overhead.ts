// `npm run bench:run`: the run engine's overhead — wall time of a whole `llama-eval run` minus the
// time spent inside the runner — on a tiny model over a full suite (issue 6's target: <= 5%).
//
// Time inside the runner = wall time each cell spends in openRunner() and in the runner's
// loglikelihood()/generate() calls (tokenizing, building the ORT session, running it), measured by
// the cell around those calls (ExecuteResult.runnerSeconds). The runners' own throughput records count
// less (model forward only), so both figures are printed. Everything else — forking the cell process, importing the tasks, loading and hashing
// data, building prompts, writing records, the summary — is the harness's overhead. The response
// cache is off: a cached run would measure the cache, not the engine.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yargs from 'yargs';
import { openRunner } from '../../runners/open.ts';
import type { Backend } from '../../runners/types.ts';
import { InputError } from '../../results/errors.ts';
import { readRecords } from '../../results/store.ts';
import { evaluate } from '../run/evaluate.ts';

interface Args {
  suite: string;
  model: string;
  backend: Backend;
  limit: number | undefined;
  json: boolean;
}

function parse(argv: readonly string[]): Args {
  const raw = yargs([...argv])
    .scriptName('bench:run')
    .option('suite', { type: 'string', default: 'commonsense', describe: 'suite to run in full' })
    .option('model', { type: 'string', default: 'tiny-llama-3', describe: 'model (default: the embedded tiny random-weight model)' })
    .option('backend', { choices: ['ort', 'reference', 'null'] as const, default: 'ort' as const })
    .option('limit', { type: 'number', describe: 'documents per task (default: all)' })
    .option('json', { type: 'boolean', default: false })
    .strict()
    .fail((message: string) => {
      throw new InputError(`bench:run: ${message}`);
    })
    .parseSync();
  return { suite: raw.suite, model: raw.model, backend: raw.backend, limit: raw.limit, json: raw.json };
}

/** Opens and closes the runner once, so the embedded model's files exist before the timed run. */
async function warmUp(args: Args): Promise<void> {
  const runner = await openRunner({ backend: args.backend, model: args.model, peftArg: null, offline: true });
  await runner.close();
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  await warmUp(args);
  const outDir = mkdtempSync(join(tmpdir(), 'bench-run-'));
  try {
    const start = performance.now();
    const { summary, runnerSeconds } = await evaluate({
      suites: [args.suite], tasks: [], models: [args.model], pefts: [], backend: args.backend, protocol: null,
      limit: args.limit ?? null, seed: 1234, dataPath: null, offline: true, outDir, cacheDir: null,
    });
    const wall = (performance.now() - start) / 1000;
    const records = readRecords(join(outDir, 'records.jsonl')).records;
    const compute = records.reduce((s, r) => s + (r.kind === 'throughput' ? r.seconds : 0), 0);
    const docs = records.filter((r) => r.kind === 'sample').length;
    const cells = records.filter((r) => r.kind === 'throughput').length;
    const inRunner = runnerSeconds;
    const result = {
      suite: args.suite, model: args.model, backend: args.backend, cells, docs, skipped: summary.skipped.length, errors: summary.errors.length,
      wall_s: wall, runner_s: runnerSeconds, runner_forward_s: compute, overhead_s: wall - inRunner, overhead_pct: (100 * (wall - inRunner)) / wall,
      overhead_ms_per_cell: (1000 * (wall - inRunner)) / Math.max(1, cells), overhead_ms_per_doc: (1000 * (wall - inRunner)) / Math.max(1, docs),
    };
    if (args.json) {
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    } else {
      process.stdout.write(
        `bench:run ${args.suite} on ${args.model} (${args.backend}): ${cells} cells, ${docs} docs, ${result.skipped} skipped, ${result.errors} failed\n`
        + `  wall ${wall.toFixed(2)} s = inside the runner ${runnerSeconds.toFixed(2)} s (of which forward passes ${compute.toFixed(2)} s) + harness ${result.overhead_s.toFixed(2)} s\n`
        + `  harness overhead ${result.overhead_pct.toFixed(1)}% of wall (target <= 5%): ${result.overhead_ms_per_cell.toFixed(0)} ms/cell, ${result.overhead_ms_per_doc.toFixed(1)} ms/doc\n`,
      );
    }
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(error instanceof InputError ? 2 : 3);
});
