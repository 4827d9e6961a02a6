// `llama-eval drift`: the figures `llama-perplexity --kl-divergence` prints, for any pair of
// models built from one checkpoint (harness/drift/pair.ts), as a table or the drift record as JSON.
import { runDrift } from '../drift/run.ts';
import { InputError } from '../errors.ts';
import type { CliIO } from './command.ts';
import { printJson, printTable } from './output.ts';

const str = (v: unknown): string | undefined => (v === undefined || v === null ? undefined : String(v));

function positiveInt(name: string, v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InputError(`--${name} ${String(v)}: expected a positive integer`);
  return n;
}

const fmt = (x: number, se: number | null, digits = 6) => (se === null ? x.toExponential(digits - 3) : `${x.toExponential(digits - 3)} ± ${se.toExponential(2)}`);

export async function run(args: Record<string, unknown>, io: CliIO): Promise<number> {
  const backend = args.backend === 'ort' ? 'ort' : 'reference';
  const init = args.init === 'zero' ? 'zero' : 'random';
  const seed = Number(args.seed ?? 0);
  if (!Number.isInteger(seed)) throw new InputError(`--seed ${String(args.seed)}: expected an integer`);
  const { record, recordsPath } = await runDrift({
    model: String(args.model),
    peft: str(args.peft),
    against: str(args.against) ?? 'base',
    backend,
    data: String(args.data),
    maxTokens: positiveInt('max-tokens', args.maxTokens ?? args['max-tokens'] ?? 256)!,
    ctx: positiveInt('ctx', args.ctx),
    seed,
    init,
    offline: args.offline === true,
    out: str(args.out),
  });
  if (args.json) {
    printJson(io, record);
    return 0;
  }
  const r = record;
  io.out(`drift of ${r.model} + ${r.peft ?? '(no PEFT)'} against ${r.against}, backend ${r.backend}, ${r.n_tokens} tokens of ${r.data}\n`);
  printTable(io, ['statistic', 'value'], [
    ['Mean KL(base||adapted) nats', fmt(r.kl_mean, r.kl_stderr)],
    ['Median KL', r.kl_median.toExponential(3)],
    ['99.0% KL', r.kl_p99.toExponential(3)],
    ['Maximum KL', r.kl_max.toExponential(3)],
    ['Same top p', r.top1_stderr === null ? `${(100 * r.top1_agreement).toFixed(3)} %` : `${(100 * r.top1_agreement).toFixed(3)} ± ${(100 * r.top1_stderr).toFixed(3)} %`],
    ['PPL(base)', r.ppl_base.toFixed(4)],
    ['PPL(adapted)', r.ppl_adapted.toFixed(4)],
    ['PPL ratio', r.ppl_ratio_stderr === null ? r.ppl_ratio.toFixed(6) : `${r.ppl_ratio.toFixed(6)} ± ${r.ppl_ratio_stderr.toFixed(6)}`],
    ['RMS Δp', `${(100 * r.delta_p_rms).toPrecision(4)} %`],
  ]);
  if (recordsPath !== null) io.out(`drift record appended to ${recordsPath} (run ${r.run_id})\n`);
  return 0;
}
