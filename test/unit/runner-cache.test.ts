// The response cache (runners/cached.ts): a wrapped null runner that counts its calls, and the run
// engine end to end (a cached cell's runner processes zero tokens).
import { mkdtempSync, readdirSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { evaluate, type EvaluateOptions } from '../../harness/run/evaluate.ts';
import { CachedRunner, defaultResponseCacheDir } from '../../runners/cached.ts';
import { NullRunner, nullLogprob } from '../../runners/null.ts';
import type { GenerateRequest, LoglikelihoodRequest } from '../../runners/types.ts';
import { readRecords } from '../../results/store.ts';
import type { RunRecord, SampleRecord } from '../../results/schema.ts';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'runner-cache-'));
  dirs.push(d);
  return d;
};

/** A null runner that counts the requests it is asked. */
class CountingRunner extends NullRunner {
  calls = 0;
  override loglikelihood(reqs: readonly LoglikelihoodRequest[]) {
    this.calls += reqs.length;
    return super.loglikelihood(reqs);
  }
  override generate(reqs: readonly GenerateRequest[]) {
    this.calls += reqs.length;
    return super.generate(reqs);
  }
}

const collect = async <T>(it: AsyncIterable<T>): Promise<T[]> => {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
};
const LL: LoglikelihoodRequest[] = [{ context: 'The sky is', continuation: ' blue' }, { context: 'The sky is', continuation: ' green' }, { context: 'Ice is', continuation: ' cold' }];
const GEN: GenerateRequest[] = [{ context: 'Q: 1+1?', until: ['\n'], maxTokens: 4 }];
const BASE = { modelHash: 'model-a', adapterHash: null };

describe('CachedRunner', () => {
  it('answers a repeated request from the cache with zero runner calls and identical results', async () => {
    const dir = tmp();
    const first = new CountingRunner();
    const r1 = await collect(new CachedRunner(first, dir, BASE).loglikelihood(LL));
    const g1 = await collect(new CachedRunner(first, dir, BASE).generate(GEN));
    expect(first.calls).toBe(4);
    // The null runner's documented formula, computed here, not read back from the cache.
    expect(r1.map((r) => r.logprob)).toEqual(LL.map((q) => nullLogprob(q.context, q.continuation)));
    const second = new CountingRunner();
    const cached = new CachedRunner(second, dir, BASE);
    expect(await collect(cached.loglikelihood(LL))).toEqual(r1);
    expect(await collect(cached.generate(GEN))).toEqual(g1);
    expect(second.calls).toBe(0);
    expect(cached.stats).toEqual({ hits: 4, misses: 0 });
    expect(second.throughput().prefillTokens).toBe(0);
  });

  it('asks only for the misses, in one call, and returns everything in request order', async () => {
    const dir = tmp();
    await collect(new CachedRunner(new CountingRunner(), dir, BASE).loglikelihood([LL[1]!]));
    const inner = new CountingRunner();
    const out = await collect(new CachedRunner(inner, dir, BASE).loglikelihood(LL));
    expect(inner.calls).toBe(2);
    expect(out.map((r) => r.logprob)).toEqual(LL.map((q) => nullLogprob(q.context, q.continuation)));
  });

  it('misses on a different adapter hash, model hash or generation setting', async () => {
    const dir = tmp();
    await collect(new CachedRunner(new CountingRunner(), dir, BASE).loglikelihood(LL));
    await collect(new CachedRunner(new CountingRunner(), dir, BASE).generate(GEN));
    for (const parts of [{ ...BASE, adapterHash: 'lora-1' }, { ...BASE, modelHash: 'model-b' }]) {
      const inner = new CountingRunner();
      await collect(new CachedRunner(inner, dir, parts).loglikelihood(LL));
      expect(inner.calls).toBe(3);
    }
    const inner = new CountingRunner();
    await collect(new CachedRunner(inner, dir, BASE).generate([{ ...GEN[0]!, maxTokens: 5 }]));
    expect(inner.calls).toBe(1);
  });

  it('recomputes over a torn or foreign last line instead of failing', async () => {
    const dir = tmp();
    await collect(new CachedRunner(new CountingRunner(), dir, BASE).loglikelihood(LL));
    const [file] = readdirSync(dir);
    appendFileSync(join(dir, file!), '{"k":"abc","r":{"logp');
    writeFileSync(join(dir, 'unrelated.jsonl'), 'not json\n');
    const inner = new CountingRunner();
    await collect(new CachedRunner(inner, dir, BASE).loglikelihood(LL));
    expect(inner.calls).toBe(0);
    // An answer appended after the torn line is read back on the next open.
    await collect(new CachedRunner(new CountingRunner(), dir, BASE).generate(GEN));
    const again = new CountingRunner();
    await collect(new CachedRunner(again, dir, BASE).generate(GEN));
    expect(again.calls).toBe(0);
  });

  it('lives under $XDG_CACHE_HOME when set, else ~/.cache', () => {
    expect(defaultResponseCacheDir({ XDG_CACHE_HOME: '/x/cache' })).toBe('/x/cache/llama-eval/responses');
    expect(defaultResponseCacheDir({ HOME: '/home/u' })).toMatch(/\.cache\/llama-eval\/responses$/);
  });
});

describe('the response cache in a run', () => {
  const TASK_MODULE = new URL('../fixtures/run/tasks.ts', import.meta.url).href;
  const options = (cacheDir: string | null, extra: Partial<EvaluateOptions> = {}): EvaluateOptions => ({
    suites: [], tasks: ['mc-ok'], models: ['fixture-model'], pefts: [], backend: 'null', protocol: null, limit: null, seed: 7,
    dataPath: null, offline: true, outDir: join(tmp(), 'out'), taskModule: TASK_MODULE, cacheDir, ...extra,
  });
  const records = (o: EvaluateOptions): RunRecord[] => readRecords(join(o.outDir, 'records.jsonl')).records;
  const tokens = (o: EvaluateOptions): number[] => records(o).flatMap((r) => (r.kind === 'throughput' ? [r.tokens] : []));
  const samples = (o: EvaluateOptions) => records(o).filter((r): r is SampleRecord => r.kind === 'sample').map(({ time: _t, run_id: _r, ...rest }) => rest);
  const metrics = (o: EvaluateOptions) => records(o).flatMap((r) => (r.kind === 'metric' ? [[r.metric, r.value, r.stderr, r.n]] : []));

  it('a second run of the same cell makes no runner calls and writes identical samples and metrics; another adapter misses', async () => {
    const cache = tmp();
    const a = options(cache);
    await evaluate(a);
    // The null runner counts every word it scores as a prefill token: the first run scored some.
    expect(tokens(a)[0]).toBeGreaterThan(0);
    const b = options(cache);
    await evaluate(b);
    expect(tokens(b)).toEqual([0]);
    expect(samples(b)).toEqual(samples(a));
    expect(metrics(b)).toEqual(metrics(a));
    const lora = options(cache, { pefts: [{ arg: 'lora:r=8', label: 'lora r=8' }] });
    await evaluate(lora);
    expect(tokens(lora)[0]).toBe(tokens(a)[0]);
    // --no-cache (cacheDir null) always computes.
    const fresh = options(null);
    await evaluate(fresh);
    expect(tokens(fresh)[0]).toBe(tokens(a)[0]);
  });
});
