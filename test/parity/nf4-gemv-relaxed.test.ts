// The relaxed-SIMD kernels need a V8 flag in Node 20, so they run in a child node that has it;
// the check is the same: exact NF4 weights, float64 reference, float32 summation tolerance.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const SCRIPT = `
import { nf4Dequantize, nf4Quantize } from './runners/quant/nf4.ts';
import { Nf4GemvWasm } from './kernels/nf4-gemv-wasm.ts';
import { Nf4GemvTiled } from './kernels/nf4-gemv-tiled.ts';
import { createNf4Gemv } from './kernels/nf4-gemv.ts';
import { seededFloats } from './kernels/measure.ts';
const N = 32, K = 128;
const q = nf4Quantize(seededFloats(N * K, 3));
const w = nf4Dequantize(q);
const x = seededFloats(K, 4);
const m = { packed: q.packed, absmax: q.absmax, n: N, k: K };
const out = {};
for (const [name, g] of [['rowmajor', await Nf4GemvWasm.create(m, 2, { relaxed: true })], ['tiled', await Nf4GemvTiled.create(m, 2, { relaxed: true, subtiles: 1 })], ['factory', await createNf4Gemv(m, { threads: 2, kernel: 'tiled' })]]) {
  const y = g.gemv(x);
  let err = 0;
  for (let n = 0; n < N; n++) { let a = 0; for (let k = 0; k < K; k++) a += x[k] * w[n * K + k]; err = Math.max(err, Math.abs(a - y[n])); }
  out[name] = { err, variant: g.variant ?? name };
  await g.close();
}
console.log(JSON.stringify(out));
`;

describe('relaxed-SIMD NF4 GEMV (node --experimental-wasm-relaxed-simd)', () => {
  it('row-major and tiled relaxed kernels match the reference, and the factory picks relaxed for tiled', () => {
    const r = spawnSync(process.execPath, ['--experimental-wasm-relaxed-simd', '--import', 'tsx', '--input-type=module', '-e', SCRIPT], {
      cwd: new URL('../..', import.meta.url).pathname, encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as Record<string, { err: number; variant: string }>;
    // float32 sums of 128 products of magnitude <= 1 (seededFloats): well under 1e-5.
    for (const name of ['rowmajor', 'tiled', 'factory']) expect(out[name]?.err).toBeLessThan(1e-5);
    expect(out.factory?.variant).toBe('wasm-tiled-relaxed-2t');
  });
});
