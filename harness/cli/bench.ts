// `llama-eval bench kernels`: measures the machine's limits, then each kernel's variants, and
// prints rows (table or --json) and optionally appends `kernel` records.
import { z } from 'zod';
import { InputError } from '../errors.ts';
import { RecordWriter } from '../../results/store.ts';
import type { KernelRecord } from '../../results/schema.ts';
import { benchKernels } from '../../kernels/index.ts';
import type { KernelRow } from '../../kernels/measure.ts';
import { BENCH_DEVICES, BENCH_KERNELS, BENCH_TARGETS } from './bench-args.ts';
import type { CliIO } from './command.ts';
import { printJson, printTable } from './output.ts';

const UNITS: Record<string, number> = { '': 1, b: 1, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12 };

/** "8GiB" / "512MiB" / "2e9" -> bytes. */
export function parseBytes(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? UNITS[(m[2] ?? '').toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new InputError(`--max-memory "${text}": expected a size like 8GiB, 512MiB or 2e9 (bytes)`);
  return Number(m[1]) * unit;
}

const ArgsSchema = z.object({
  target: z.enum(BENCH_TARGETS),
  kernel: z.array(z.enum(BENCH_KERNELS)).optional(),
  device: z.enum(BENCH_DEVICES),
  quick: z.boolean(),
  maxMemory: z.string(),
  output: z.string().optional(),
  runId: z.string().min(1).optional(),
  json: z.boolean(),
});

export function toKernelRecord(row: KernelRow, runId: string, time: string): KernelRecord {
  return {
    kind: 'kernel', run_id: runId, cell_id: `kernels/${row.kernel}`, time,
    kernel: row.kernel, variant: row.variant, backend: row.backend, device: row.device, shape: row.shape, dtype: row.dtype,
    median_ms: row.median_ms, min_ms: row.min_ms, max_ms: row.max_ms, gflops: row.gflops, gbps: row.gbps,
    bound: row.bound, roofline_fraction: row.roofline_fraction, device_ms: null,
  };
}

export async function run(args: Record<string, unknown>, io: CliIO): Promise<number> {
  const parsed = ArgsSchema.safeParse(args);
  if (!parsed.success) throw new InputError(`bench: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const a = parsed.data;
  const maxMemoryBytes = parseBytes(a.maxMemory);
  const result = await benchKernels({
    kernels: a.kernel ?? [...BENCH_KERNELS],
    device: a.device,
    quick: a.quick,
    maxMemoryBytes,
    log: (line) => io.err(`${line}\n`),
  });
  if (a.output) {
    const runId = a.runId ?? `bench-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    const writer = new RecordWriter(a.output);
    try {
      const time = new Date().toISOString();
      for (const row of result.rows) writer.write(toKernelRecord(row, runId, time));
    } finally {
      writer.close();
    }
    io.err(`wrote ${result.rows.length} kernel records to ${a.output}\n`);
  }
  const l = result.limits;
  const machine = `machine (${l.device}): bandwidth ${l.bandwidthGBs.toFixed(1)} GB/s (triad js ${l.triadJsGBs.toFixed(1)}, triad ort ${l.triadOrtGBs.toFixed(1)}, fp32 gemv stream ${l.gemvReadGBs.toFixed(1)}); fp32 GEMM ${l.peakGflops.toFixed(1)} GFLOP/s (${l.gemmShape})\n`;
  const trailer = [...result.notes.map((n) => `note: ${n}\n`), ...result.skipped.map((s) => `skipped: ${s}\n`)].join('');
  if (a.json) {
    // stdout stays one JSON document; the limits and notes go to stderr for the human.
    printJson(io, result.rows);
    io.err(machine + trailer);
    return 0;
  }
  io.out(machine);
  printTable(io, ['kernel', 'variant', 'shape', 'dtype', 'median ms', 'min ms', 'p90 ms', 'GFLOP/s', 'GB/s', 'bound', 'roofline', 'max err'],
    result.rows.map((r) => [r.kernel, r.variant, r.shape, r.dtype, r.median_ms.toFixed(3), r.min_ms.toFixed(3), r.p90_ms.toFixed(3), r.gflops.toFixed(1), r.gbps.toFixed(2), r.bound, `${(100 * r.roofline_fraction).toFixed(1)}%`, r.max_abs_err.toExponential(1)]));
  io.out(trailer);
  return 0;
}
