// `llama-eval history <action>`: the run-history store (harness/history/, docs/history.md).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { InputError } from '../errors.ts';
import { trendChart } from '../history/chart.ts';
import { ingestRuns } from '../history/ingest.ts';
import { historyFlips, historyQuery, historyTrend } from '../history/queries.ts';
import { defaultHistoryPath } from '../history/store.ts';
import type { CliIO } from './command.ts';
import { printJson, printTable } from './output.ts';

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const fmt = (x: number | null, digits = 4) => (x === null ? '-' : x.toFixed(digits));

function targets(args: Record<string, unknown>): string[] {
  const t = args.targets;
  return Array.isArray(t) ? t.map(String) : [];
}

export async function run(args: Record<string, unknown>, io: CliIO): Promise<number> {
  const db = str(args.db) ?? defaultHistoryPath();
  const lockTimeoutMs = Number(args['lock-timeout'] ?? 60) * 1000;
  if (!Number.isFinite(lockTimeoutMs) || lockTimeoutMs < 0) throw new InputError(`--lock-timeout must be a number of seconds >= 0, got ${String(args['lock-timeout'])}`);
  const rest = targets(args);
  switch (args.action) {
    case 'ingest': {
      if (rest.length === 0) throw new InputError('history ingest: name at least one run directory, e.g. `llama-eval history ingest out/nightly`');
      const summary = await ingestRuns(db, rest, { lockTimeoutMs });
      if (args.json) {
        printJson(io, summary);
        return 0;
      }
      printTable(io, ['run', 'new cells', 'new metrics', 'new samples', 'new kernels', 'skipped lines'], summary.runs.map((r) =>
        [r.run_id, r.added.cells, r.added.metrics, r.added.samples, r.added.kernels, r.problems.length]));
      for (const r of summary.runs) for (const p of r.problems.slice(0, 5)) io.err(`llama-eval: skipped ${p}\n`);
      io.out(`${summary.runs.filter((r) => r.added.runs > 0).length} new of ${summary.runs.length} runs in ${db}\n`);
      return 0;
    }
    case 'trend': {
      if (rest.length > 0) throw new InputError(`history trend takes no positional arguments (got ${rest.join(' ')}); use --task and --model`);
      const task = str(args.task);
      const model = str(args.model);
      if (!task || !model) throw new InputError('history trend needs --task and --model, e.g. --task medqa --model llama-3-8b --peft lora');
      const peft = str(args.peft);
      const trend = await historyTrend(db, {
        task, model, peft: peft === undefined || peft === 'base' ? null : peft,
        ...(str(args.metric) ? { metric: str(args.metric)! } : {}),
        ...(args.last !== undefined ? { last: Number(args.last) } : {}),
      });
      const chart = str(args.chart);
      if (chart) {
        mkdirSync(dirname(chart), { recursive: true });
        writeFileSync(chart, `${JSON.stringify(trendChart(trend), null, 2)}\n`);
      }
      if (args.json) {
        printJson(io, trend);
        return 0;
      }
      // The data hash column shows where the task data changed, which breaks comparability.
      printTable(io, ['time (UTC)', 'run', trend.metric, 'stderr', 'n', 'git sha', 'data sha256'], trend.points.map((p) =>
        [p.time, p.run_id, fmt(p.value), fmt(p.stderr), p.n, p.git_sha ?? '-', p.data_sha256?.slice(0, 12) ?? '-']));
      io.out(`${trend.task} ${trend.metric} for ${trend.model}/${trend.peft ?? 'base'}: ${trend.points.length} runs${chart ? `; chart ${chart}` : ''}\n`);
      return 0;
    }
    case 'flips': {
      if (rest.length !== 2) throw new InputError(`history flips takes two run ids (run A, run B), got ${rest.length}; list runs with \`llama-eval history query "SELECT run_id, time FROM runs"\``);
      const result = await historyFlips(db, rest[0]!, rest[1]!, { ...(str(args.task) ? { task: str(args.task)! } : {}), ...(str(args.metric) ? { metric: str(args.metric)! } : {}) });
      if (args.json) {
        printJson(io, result);
        return 0;
      }
      printTable(io, ['task', 'config', 'doc', 'metric', result.a, result.b], result.flips.map((f) =>
        [f.task, `${f.model}/${f.peft ?? 'base'}`, f.doc_id, f.metric, f.a, f.b]));
      io.out(`${result.flips.length} of ${result.compared} paired items changed between ${result.a} and ${result.b}\n`);
      return 0;
    }
    case 'query': {
      if (rest.length !== 1) throw new InputError(`history query takes one SQL statement in quotes, got ${rest.length} arguments`);
      const result = await historyQuery(db, rest[0]!);
      if (args.json) {
        printJson(io, result.rows);
        return 0;
      }
      const cell = (v: unknown) => (v === null || v === undefined ? 'NULL' : typeof v === 'object' ? JSON.stringify(v) : String(v));
      printTable(io, result.columns, result.rows.map((r) => result.columns.map((c) => cell(r[c]))));
      io.out(`${result.rows.length} rows\n`);
      return 0;
    }
    default:
      throw new InputError(`history: unknown action ${String(args.action)}; expected one of ingest, trend, flips, query`);
  }
}
