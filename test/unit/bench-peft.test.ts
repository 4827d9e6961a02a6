// bench:peft's code paths on a tiny model: what each variant loads and what the ratios compare,
// never how fast anything is.
import { afterAll, describe, expect, it } from 'vitest';
import { baseWeightBytes, parsePeftBenchArgs, parsePeftChildJob, peftRatios, runPeftChild, runPeftVariant, type PeftChildResult, type PeftVariant } from '../../harness/bench/peft.ts';
import { randomModelConfig } from '../../harness/bench/random-checkpoint.ts';
import { InputError } from '../../results/errors.ts';
import { tinyCache } from '../parity/ort-helpers.ts';

const cache = tinyCache('bench-peft-');
afterAll(() => cache.cleanup());
const job = (variant: PeftVariant) => ({ variant, model: cache.checkpoint('tiny-llama-2').dir, threads: 1, promptWords: 6, newTokens: 3, reps: 1 });

describe('bench:peft variants (tiny-llama-2, in process)', () => {
  it('loads each variant with its adapter; merged and unmerged LoRA generate the same greedy ids', async () => {
    const results: PeftChildResult[] = [];
    for (const variant of ['fp32', 'lora-merged', 'lora-unmerged', 'nf4-lora'] as const) results.push(await runPeftVariant(job(variant)));
    expect(results.map((r) => r.peft === null)).toEqual([true, false, false, false]);
    expect(results[3]!.peft).toMatch(/NF4 base/);
    expect(results[0]!.stages.map((x) => x.stage)).toEqual(['ORT session created', 'after gc']);
    expect(results[2]!.stages.map((x) => x.stage)).toEqual(['reference weights read', 'PEFT plan built', 'ORT session created', 'after gc']);
    for (const r of results) {
      expect(r.generation.decodeSteps).toBe(2); // 3 new tokens: the first from the prefill, 2 decode steps
      expect(r.greedyIds).toHaveLength(4);
      expect(r.residentRssBytes).toBeGreaterThan(0);
    }
    // (W + s B A) x = W x + s B (A x): merging is exact up to fp32 rounding, so greedy ids agree.
    expect(results[1]!.greedyIds).toEqual(results[2]!.greedyIds);
    expect(peftRatios(results).mergedAgrees).toBe(true);
  });

  it('runs a variant in a child process and returns its result', async () => {
    const result = await runPeftChild(job('fp32'));
    expect(result.variant).toBe('fp32');
    expect(result.loadPeakRssBytes).toBeGreaterThan(0);
  }, 30_000);
});

describe('peftRatios', () => {
  const result = (variant: PeftVariant, decode: number, peak: number, ids = [1, 2]): PeftChildResult => ({
    variant, peft: null, loadSeconds: 1, loadPeakRssBytes: peak, residentRssBytes: peak / 2, peakRssBytes: peak,
    generation: { prefillTokensPerSecond: 2 * decode, decodeTokensPerSecond: decode, promptTokens: 4, decodeSteps: 2, samples: [] }, greedyIds: ids, stages: [],
  });
  it('compares unmerged with merged, NF4 with the fp32 base under the same LoRA, and NF4 peak with the plain model', () => {
    const r = peftRatios([result('fp32', 10, 100), result('lora-merged', 10, 300), result('lora-unmerged', 8, 400), result('nf4-lora', 4, 200, [1, 2])]);
    expect(r.unmergedDecode).toBeCloseTo(0.8, 12); // 8 / 10
    expect(r.nf4Decode).toBeCloseTo(0.5, 12); // 4 / 8
    expect(r.nf4Prefill).toBeCloseTo(0.5, 12);
    expect(r.nf4PeakRss).toBeCloseTo(0.5, 12); // 200 / 400
    expect(r.nf4ResidentRss).toBeCloseTo(0.5, 12);
    expect(r.nf4PeakRssVsPlain).toBeCloseTo(2, 12); // 200 / 100
    expect(r.mergedAgrees).toBe(true);
    expect(peftRatios([result('fp32', 1, 1), result('lora-merged', 1, 1, [1]), result('lora-unmerged', 1, 1, [2]), result('nf4-lora', 1, 1)]).mergedAgrees).toBe(false);
  });
  it('refuses a result set that lacks a variant', () => {
    expect(() => peftRatios([result('fp32', 1, 1)])).toThrow(/no result for variant lora-merged/);
  });
});

describe('baseWeightBytes', () => {
  it('counts the 1B shape cut to 2 layers in fp32 and with its linears in NF4', () => {
    const { arch } = randomModelConfig('llama-3.2-1b', 2);
    // By hand from llama-3.2-1b's config.json (hidden 2048, intermediate 8192, 32 heads x 64, 8 kv
    // heads, vocab 128256, tied embeddings). Per layer: q, o 2048^2 each; k, v 512 x 2048 each;
    // gate, up, down 8192 x 2048 each = 2*4194304 + 2*1048576 + 3*16777216 = 60817408 linear weights,
    // + 2 norms of 2048. Embedding 128256 * 2048 = 262668288; final norm 2048.
    const linears = 2 * 60817408;
    const rest = 262668288 + 2 * 2 * 2048 + 2048;
    expect(baseWeightBytes(arch, false)).toBe(4 * (linears + rest));
    // NF4: 4 bits per weight + one fp32 absmax per 64 weights = 0.5625 bytes per weight.
    expect(baseWeightBytes(arch, true)).toBe(0.5625 * linears + 4 * rest);
  });
});

describe('bad input', () => {
  it('refuses a malformed child job and bad bench flags with InputErrors', () => {
    expect(() => parsePeftChildJob('{')).toThrow(InputError);
    expect(() => parsePeftChildJob(JSON.stringify({ ...job('fp32'), variant: 'int8' }))).toThrow(/variant/);
    expect(() => parsePeftBenchArgs(['--layers', '0'])).toThrow(/--layers/);
    expect(() => parsePeftBenchArgs(['--threads', '1.5'])).toThrow(InputError);
    expect(() => parsePeftBenchArgs(['--frobnicate'])).toThrow(InputError);
  });
  it('defaults to 4 layers, 2 with --quick', () => {
    expect(parsePeftBenchArgs([]).layers).toBe(4);
    expect(parsePeftBenchArgs(['--quick']).layers).toBe(2);
    expect(parsePeftBenchArgs(['--quick', '--layers', '3']).layers).toBe(3);
  });
});
