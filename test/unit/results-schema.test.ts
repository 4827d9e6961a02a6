import { describe, expect, it } from 'vitest';
import {
  checkRecord, parseRecord, RECORD_KINDS, RecordSchema, type RecordKind, type RunRecord,
} from '../../results/schema.ts';

const base = { run_id: 'run-1', cell_id: 'cell-a', time: '2025-01-02T03:04:05.678Z' };

// One valid record per kind; the cases below break exactly one field of these.
const VALID: { [K in RecordKind]: Extract<RunRecord, { kind: K }> } = {
  manifest: {
    kind: 'manifest', ...base, cell_id: 'run',
    package_version: '0.1.0', git_sha: 'a'.repeat(40), node_version: 'v20.19.0', ort_version: null,
    host: { platform: 'linux', arch: 'x64', cpus: 16, cpu_model: 'EPYC', total_memory_bytes: 2 ** 37, gpus: [] },
    seed: 1234,
    files: [{ role: 'model', path: 'models/tiny/model.safetensors', sha256: 'f'.repeat(64) }],
    config: { models: ['tiny-llama-2'], nested: { limit: 10 } },
  },
  sample: {
    kind: 'sample', ...base, task: 'boolq', doc_id: 7, prompt_hash: 'abc123',
    target: 1, response: null, loglikelihoods: [-1.5, -0.25], metrics: { acc: 1 },
  },
  metric: {
    kind: 'metric', ...base, task: 'boolq', metric: 'acc', value: 0.75, stderr: 0.01, n: 3270,
    model: 'llama-2-7b', peft: 'lora',
  },
  params: {
    kind: 'params', ...base, model: 'llama-3.1-405b', total_params: 405_853_388_800,
    active_params: 405_853_388_800, embedding_params: 2_101_346_304, trainable_params: 0,
    peft: null, components: { embed: 2_101_346_304, layers: 401_650_696_192 },
  },
  memory: {
    kind: 'memory', ...base, peak_rss_bytes: 123_456_789, arena_bytes: null, kv_cache_bytes: 4096,
    device_bytes: null, weights_bytes: 3.5e9 * 4.127 / 8, total_bytes: 4e9,
  },
  throughput: {
    kind: 'throughput', ...base, prefill_tokens_per_s: 1234.5, decode_tokens_per_s: null, tokens: 512, seconds: 0.41,
  },
  kernel: {
    kind: 'kernel', ...base, kernel: 'nf4-matmul', variant: 'MatMulBnb4', backend: 'ort-cpu', device: 'cpu',
    shape: '1x8192x8192', dtype: 'nf4', median_ms: 2.5, min_ms: 2.1, max_ms: 3.9, gflops: 53.7, gbps: 14.2,
    bound: 'memory', roofline_fraction: 0.62, device_ms: null,
  },
  error: { kind: 'error', ...base, message: 'weights not found', stage: 'load' },
  drift: {
    kind: 'drift', ...base, model: 'tiny-llama-3', peft: 'lora:r=8', against: 'base', backend: 'reference', data: 'notes.txt',
    n_tokens: 255, kl_mean: 0.012, kl_stderr: 0.001, kl_median: 0.009, kl_p99: 0.05, kl_max: 0.08, top1_agreement: 0.97,
    top1_stderr: 0.01, ppl_base: 12.5, ppl_adapted: 12.7, ppl_ratio: 1.016, ppl_ratio_stderr: 0.004, delta_p_rms: 0.02,
  },
};

/** The validation message for `record`, or fails the test if it was accepted. */
function rejection(record: unknown): string {
  const r = checkRecord(record);
  if (r.ok) throw new Error(`expected rejection of ${JSON.stringify(record)}`);
  return r.message;
}

function without(record: RunRecord, key: string): unknown {
  const copy: Record<string, unknown> = { ...record };
  delete copy[key];
  return copy;
}

describe('record schema', () => {
  it('names every kind in RECORD_KINDS and in the union', () => {
    expect(Object.keys(VALID).sort()).toEqual([...RECORD_KINDS].sort());
    expect([...RecordSchema.options.map((o) => o.shape.kind.value)].sort()).toEqual([...RECORD_KINDS].sort());
  });

  it.each(RECORD_KINDS)('accepts a valid %s record, also after a JSON round trip', (kind) => {
    const rec = VALID[kind];
    expect(parseRecord(rec)).toEqual(rec);
    expect(parseRecord(JSON.parse(JSON.stringify(rec)))).toEqual(JSON.parse(JSON.stringify(rec)));
  });

  it.each(RECORD_KINDS)('rejects a %s record missing a common field, naming it', (kind) => {
    for (const key of ['run_id', 'cell_id', 'time']) {
      expect(rejection(without(VALID[kind], key))).toContain(`${key}:`);
    }
  });

  it('names the field path of missing and wrong-typed fields', () => {
    expect(rejection({ ...VALID.metric, value: '0.75' })).toMatch(/^invalid metric record: value: .*expected number/);
    expect(rejection(without(VALID.metric, 'stderr'))).toContain('stderr:');
    expect(rejection({ ...VALID.metric, n: 1.5 })).toContain('n: ');
    expect(rejection({ ...VALID.metric, n: -1 })).toContain('n: ');
    expect(rejection({ ...VALID.manifest, host: { ...VALID.manifest.host, cpus: '16' } })).toContain('host.cpus:');
    const badFile = { ...VALID.manifest.files[0], sha256: 'xyz' };
    expect(rejection({ ...VALID.manifest, files: [badFile] })).toContain('files.0.sha256:');
    expect(rejection({ ...VALID.sample, metrics: { acc: 'yes' } })).toContain('metrics.acc:');
    expect(rejection({ ...VALID.params, components: { embed: 1.5 } })).toContain('components.embed:');
    expect(rejection({ ...VALID.kernel, shape: '1 by 8192' })).toContain('shape:');
    expect(rejection({ ...VALID.kernel, bound: 'latency' })).toContain('bound:');
    expect(rejection({ ...VALID.error, time: 'yesterday' })).toContain('time:');
    expect(rejection({ ...VALID.drift, top1_agreement: 1.5 })).toContain('top1_agreement:');
    expect(rejection({ ...VALID.drift, ppl_ratio: -1 })).toContain('ppl_ratio:');
    expect(rejection(without(VALID.drift, 'against'))).toContain('against:');
  });

  it('reports every bad field at once', () => {
    const msg = rejection({ ...VALID.throughput, tokens: 'many', seconds: -1 });
    expect(msg).toContain('tokens:');
    expect(msg).toContain('seconds:');
  });

  it('rejects unknown kinds and extra keys (strict objects)', () => {
    expect(rejection({ ...VALID.metric, kind: 'metrics' })).toContain('kind:');
    expect(rejection(without(VALID.metric, 'kind'))).toContain('kind:');
    expect(rejection({ ...VALID.metric, stdder: 0.1 })).toContain('stdder');
    expect(rejection({ ...VALID.manifest, host: { ...VALID.manifest.host, gpu: 'H100' } })).toContain('host:');
    expect(rejection(null)).toContain('invalid ? record');
  });

  it('keeps free-form payloads free-form but required where the contract says so', () => {
    expect(checkRecord({ ...VALID.manifest, config: { a: [1, { b: null }], c: 'x' } }).ok).toBe(true);
    expect(checkRecord({ ...VALID.sample, target: ['a', 'b'], response: { text: 'a' } }).ok).toBe(true);
    expect(checkRecord({ ...VALID.sample, target: null }).ok).toBe(true);
    expect(checkRecord(without(VALID.sample, 'response')).ok).toBe(true);
    expect(rejection(without(VALID.sample, 'target'))).toContain('target:');
    expect(checkRecord({ ...VALID.params, peft: { method: 'lora', r: 8 } }).ok).toBe(true);
    expect(rejection(without(VALID.params, 'peft'))).toContain('peft:');
  });

  it('accepts the value ranges real runs produce', () => {
    expect(checkRecord({ ...VALID.params, total_params: 2e12, active_params: 2.88e11 }).ok).toBe(true);
    expect(checkRecord({ ...VALID.sample, doc_id: 'test-00042' }).ok).toBe(true);
    expect(checkRecord({ ...VALID.manifest, git_sha: 'abc1234-dirty' }).ok).toBe(true);
    expect(checkRecord({ ...VALID.metric, value: -3.2, stderr: null, peft: null }).ok).toBe(true);
    expect(checkRecord({ ...VALID.error, time: '2025-01-02T03:04:05+02:00' }).ok).toBe(true);
    expect(checkRecord({ ...VALID.kernel, device_ms: 1.9 }).ok).toBe(true);
    expect(checkRecord(without(VALID.kernel, 'device_ms')).ok).toBe(true);
  });

  it('rejects kernel timings out of order', () => {
    expect(rejection({ ...VALID.kernel, min_ms: 3 })).toContain('median_ms: expected min_ms <= median_ms <= max_ms');
  });

  it('throws an Error from parseRecord with the same message', () => {
    expect(() => parseRecord({ ...VALID.metric, value: 'x' })).toThrow(/invalid metric record: value:/);
  });
});
