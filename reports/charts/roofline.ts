// The kernel roofline: attained GFLOP/s against arithmetic intensity (FLOP/byte = GFLOP/s over
// GB/s), log-log. The roofs are recovered from the records themselves: a memory-bound kernel at
// fraction f of its roof implies peak bandwidth gbps / f, a compute-bound one peak gflops / f.
import type { TopLevelSpec } from 'vega-lite';
import type { KernelRow } from '../summary-types.ts';
import { VEGA_LITE_SCHEMA } from './spec.ts';

export function rooflineChart(kernels: readonly KernelRow[]): TopLevelSpec | null {
  const points = kernels.filter((k) => k.gflops > 0 && k.gbps > 0).map((k) => ({
    label: `${k.kernel}/${k.variant} ${k.shape} ${k.dtype}`, kernel: k.kernel, variant: k.variant, backend: k.backend,
    intensity: k.gflops / k.gbps, gflops: k.gflops, bound: k.bound, roofline_fraction: k.roofline_fraction, median_ms: k.median_ms,
  }));
  if (points.length === 0) return null;
  const peak = (bound: 'memory' | 'compute', of: (k: KernelRow) => number) =>
    Math.max(0, ...kernels.filter((k) => k.bound === bound && k.roofline_fraction > 0).map((k) => of(k) / k.roofline_fraction));
  const peakBw = peak('memory', (k) => k.gbps);
  const peakFlops = peak('compute', (k) => k.gflops);
  const xs = points.map((p) => p.intensity);
  const [xMin, xMax] = [Math.min(...xs) / 4, Math.max(...xs) * 4];
  const roof: { intensity: number; gflops: number }[] = [];
  if (peakBw > 0 && peakFlops > 0) {
    const ridge = peakFlops / peakBw;
    for (const x of [xMin, Math.min(Math.max(ridge, xMin), xMax), xMax]) roof.push({ intensity: x, gflops: Math.min(peakFlops, peakBw * x) });
  } else if (peakBw > 0) {
    for (const x of [xMin, xMax]) roof.push({ intensity: x, gflops: peakBw * x });
  } else if (peakFlops > 0) {
    for (const x of [xMin, xMax]) roof.push({ intensity: x, gflops: peakFlops });
  }
  const x = { field: 'intensity', type: 'quantitative', scale: { type: 'log' }, title: 'arithmetic intensity (FLOP/byte, log)' } as const;
  const y = { field: 'gflops', type: 'quantitative', scale: { type: 'log' }, title: 'attained GFLOP/s (log)' } as const;
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: 'Kernel roofline',
    width: 420,
    height: 280,
    layer: [
      ...(roof.length > 0 ? [{ data: { values: roof }, mark: { type: 'line', color: '#888', strokeDash: [4, 3] }, encoding: { x, y } }] : []),
      {
        data: { values: points },
        mark: { type: 'point', filled: true, size: 70 },
        encoding: {
          x, y,
          color: { field: 'kernel', type: 'nominal' },
          shape: { field: 'bound', type: 'nominal' },
          tooltip: [{ field: 'label' }, { field: 'backend' }, { field: 'median_ms', format: '.3f' }, { field: 'roofline_fraction', format: '.1%' }],
        },
      },
    ],
  } as TopLevelSpec;
}
