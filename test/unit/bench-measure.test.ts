// The benchmark code paths on tiny inputs: what is counted and compared, never how fast it is.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { benchPrompt, compareSharing, measureGeneration } from '../../harness/bench/measure.ts';
import { parseChildJob, runInChild } from '../../harness/bench/child.ts';
import { parseBenchArgs, taskQuestions } from '../../harness/bench/common.ts';
import { speedRatio } from '../../harness/bench/peers.ts';
import { openOrtRunner, type OrtRunner } from '../../runners/ort/runner.ts';
import { NullRunner } from '../../runners/null.ts';
import type { LoglikelihoodRequest, LoglikelihoodResult, Runner } from '../../runners/types.ts';
import { InputError } from '../../results/errors.ts';

let runner: OrtRunner;
beforeAll(async () => {
  runner = await openOrtRunner('tiny-llama-3', { device: 'cpu', offline: true, threads: 1 });
});
afterAll(async () => runner.close());

describe('generation throughput', () => {
  it('counts the prompt tokens the tokenizer makes and n - 1 decode steps for n generated tokens', async () => {
    const rates = await measureGeneration(runner, { promptWords: 12, newTokens: 5, reps: 2 });
    // The runner encodes a context without special tokens (HFLM's default, no BOS).
    expect(rates.promptTokens).toBe(runner.tokenizer.encode(benchPrompt(12, 1), { addSpecialTokens: false }).length);
    expect(rates.samples).toHaveLength(2);
    for (const s of rates.samples) expect(s.decodeSteps).toBe(4);
    expect(rates.prefillTokensPerSecond).toBeGreaterThan(0);
    expect(Number.isFinite(rates.decodeTokensPerSecond)).toBe(true);
  });

  it('refuses a generation with no decode step', async () => {
    await expect(measureGeneration(runner, { promptWords: 4, newTokens: 1, reps: 1 })).rejects.toThrow(RangeError);
  });

  it('varies the prompt start between repetitions so no cached prefix is reused', () => {
    expect(benchPrompt(10, 1).split(' ')).toHaveLength(10);
    expect(benchPrompt(10, 1).split(' ')[0]).not.toBe(benchPrompt(10, 2).split(' ')[0]);
  });
});

describe('multiple-choice prefix sharing vs naive scoring', () => {
  it('gives the same logprobs and greedy flags both ways on HellaSwag items', async () => {
    const questions = await taskQuestions('hellaswag', 2);
    expect(questions.every((q) => q.length === 4 && q.every((r) => r.context === q[0]!.context))).toBe(true);
    const result = await compareSharing(runner, questions);
    expect(result.requests).toBe(8);
    expect(result.maxAbsDiff).toBeLessThanOrEqual(1e-5); // issue 4's tolerance
    expect(result.greedyMismatches).toBe(0);
  });

  it('reports a runner whose shared scoring disagrees with its per-choice scoring', async () => {
    // A runner that adds 0.5 to every logprob when it is asked for more than one request at once.
    const base = new NullRunner();
    const skewed: Runner = {
      info: base.info,
      async *loglikelihood(reqs: readonly LoglikelihoodRequest[]): AsyncIterable<LoglikelihoodResult> {
        for (const r of reqs) yield { logprob: -r.continuation.length + (reqs.length > 1 ? 0.5 : 0), isGreedy: reqs.length > 1, tokens: 1 };
      },
      generate: (reqs) => base.generate(reqs),
      memory: () => base.memory(),
      throughput: () => base.throughput(),
      close: () => base.close(),
    };
    const q = [{ context: 'a', continuation: ' b' }, { context: 'a', continuation: ' cc' }];
    const result = await compareSharing(skewed, [q, q]);
    expect(result.maxAbsDiff).toBe(0.5);
    expect(result.greedyMismatches).toBe(4);
  });

  it('refuses an empty question list', async () => {
    await expect(compareSharing(runner, [])).rejects.toThrow(RangeError);
  });
});

describe('bench arguments and child jobs', () => {
  it('parses the options and rejects bad ones with an input error', () => {
    expect(parseBenchArgs(['--quick', '--threads', '3'], 'bench:runner')).toMatchObject({ quick: true, threads: 3, model: 'llama-3.2-1b', json: false });
    expect(() => parseBenchArgs(['--threads', '0'], 'bench:runner')).toThrow(InputError);
    expect(() => parseBenchArgs(['--threads', 'many'], 'bench:runner')).toThrow(InputError);
    expect(() => parseBenchArgs(['--turbo'], 'bench:runner')).toThrow(/bench:runner/);
  });

  it('rejects malformed child jobs with an input error naming the field', () => {
    expect(() => parseChildJob('{not json')).toThrow(InputError);
    expect(() => parseChildJob(JSON.stringify({ backend: 'ort', model: 'x', promptWords: 4, newTokens: 2, reps: 1 }))).toThrow(/threads/);
    expect(() => parseChildJob(JSON.stringify({ backend: 'tpu', model: 'x', threads: 1, promptWords: 4, newTokens: 2, reps: 1 }))).toThrow(/backend/);
  });

  it('runs a job in a child process and brings back its peak RSS and rates', async () => {
    const r = await runInChild({ backend: 'ort', model: 'tiny-llama-2', threads: 1, promptWords: 6, newTokens: 3, reps: 1 });
    expect(r.backend).toBe('ort');
    expect(r.generation.decodeSteps).toBe(2);
    expect(r.loadPeakRssBytes).toBeGreaterThan(0);
    expect(r.peakRssBytes).toBeGreaterThanOrEqual(r.loadPeakRssBytes);
    expect(r.sharing).toEqual([]);
  }, 60_000);

  it('states peer ratios as ORT over the peer', () => {
    expect(speedRatio(30, 10)).toBe(3);
  });
});
