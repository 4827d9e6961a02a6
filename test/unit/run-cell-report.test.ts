// bench:run's overhead cuts (docs/benchmarks.md): a cell reports once its records are closed, before
// its runner tears down; the parent hashes the model while the task registry loads, without changing
// which bad input is reported first; model files hash in 1 MiB reads.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { runCell, type CellOutcome } from '../../harness/run/cell.ts';
import { evaluate } from '../../harness/run/evaluate.ts';
import { sha256File } from '../../harness/run/manifest.ts';
import type { Cell } from '../../harness/run/plan.ts';
import { NullRunner } from '../../runners/null.ts';
import { InputError } from '../../results/errors.ts';
import { readRecords } from '../../results/store.ts';
import { MC_DOCS } from '../fixtures/run/tasks.ts';

const TASK_MODULE = new URL('../fixtures/run/tasks.ts', import.meta.url).href;
const dir = mkdtempSync(join(tmpdir(), 'run-cell-report-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cell: Cell = {
  id: 'fixture-model/base/mc-ok/test', model: 'fixture-model', peft: null, task: 'mc-ok', protocol: 'loglikelihood',
  backend: 'null', limit: null, seed: 7, dataPath: null, numFewshot: 0,
};

describe('runCell reports before the runner closes', () => {
  it('calls onComplete once, with every record on disk and the runner still open, then closes the runner', async () => {
    const recordsPath = join(dir, 'complete.jsonl');
    const events: string[] = [];
    const close = vi.spyOn(NullRunner.prototype, 'close').mockImplementation(async () => {
      events.push('close');
    });
    let seen: CellOutcome | null = null;
    try {
      const outcome = await runCell(cell, {
        recordsPath, runId: 'run-1', taskModule: TASK_MODULE, offline: true,
        onComplete: async (o) => {
          events.push('complete');
          seen = o;
          const { records, problems } = readRecords(recordsPath);
          expect(problems).toEqual([]);
          // One sample per fixture document, then memory, throughput and the metrics that mark the cell done.
          expect(records.filter((r) => r.kind === 'sample')).toHaveLength(MC_DOCS.length);
          expect(records.filter((r) => r.kind === 'metric').map((r) => (r.kind === 'metric' ? r.metric : ''))).toEqual(['acc', 'acc_norm']);
        },
      });
      expect(events).toEqual(['complete', 'close']);
      expect(seen).toEqual(outcome);
    } finally {
      close.mockRestore();
    }
  });

  it('still closes the runner when the report fails, and throws the report\'s error', async () => {
    const close = vi.spyOn(NullRunner.prototype, 'close');
    try {
      await expect(runCell(cell, {
        recordsPath: join(dir, 'report-fails.jsonl'), runId: 'run-2', taskModule: TASK_MODULE, offline: true,
        onComplete: async () => { throw new Error('parent gone'); },
      })).rejects.toThrow('parent gone');
      expect(close).toHaveBeenCalledTimes(1);
    } finally {
      close.mockRestore();
    }
  });
});

describe('evaluate: model hashing overlaps the registry import', () => {
  it('an unknown task is still reported before an unknown model', async () => {
    const run = evaluate({
      suites: [], tasks: ['no-such-task'], models: ['no-such-model-xyz'], pefts: [], backend: 'ort', protocol: null, limit: null, seed: 1,
      dataPath: null, offline: true, outDir: join(dir, 'bad-both'), taskModule: TASK_MODULE,
    });
    await expect(run).rejects.toThrow(InputError);
    await expect(run).rejects.toThrow(/--task no-such-task: unknown task/);
  });

  it('an unknown model alone is an InputError naming it', async () => {
    await expect(evaluate({
      suites: [], tasks: ['mc-ok'], models: ['no-such-model-xyz'], pefts: [], backend: 'ort', protocol: null, limit: null, seed: 1,
      dataPath: null, offline: true, outDir: join(dir, 'bad-model'), taskModule: TASK_MODULE,
    })).rejects.toThrow(/unknown model "no-such-model-xyz"/);
  });
});

describe('sha256File', () => {
  it('hashes a file longer than one 1 MiB read like coreutils sha256sum', async () => {
    const path = join(dir, 'zeros.bin');
    writeFileSync(path, Buffer.alloc(3 * 1024 * 1024 + 1));
    // `head -c 3145729 /dev/zero | sha256sum` (GNU coreutils 9), an independent implementation.
    expect(await sha256File(path)).toBe('5983281b51c767c831104f52c95e4075f27e6f4fa8dd0526e3929f79176a1217');
  });

  it('hashes "abc" to the FIPS 180-2 example digest, and rejects a missing file', async () => {
    const path = join(dir, 'abc.txt');
    writeFileSync(path, 'abc');
    // FIPS 180-2, appendix B.1: SHA-256("abc").
    expect(await sha256File(path)).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    await expect(sha256File(join(dir, 'missing.bin'))).rejects.toThrow(/ENOENT/);
  });
});
