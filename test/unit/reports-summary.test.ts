// Records -> summary: cell attribution, failed cells, CSV rows, and the fixture runs themselves.
import { mkdtempSync, readFileSync, rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../../results/schema.ts';
import { cellIdentities, llamaVersion, peftName } from '../../reports/cells.ts';
import { resultsCsv } from '../../reports/csv.ts';
import { ReportInputError } from '../../reports/errors.ts';
import { loadRun } from '../../reports/run.ts';
import { suiteOf } from '../../reports/suites.ts';
import { summarizeRun, taskStatus } from '../../reports/summary.ts';
import { summaryMarkdown } from '../../reports/summary-md.ts';
import { FIXTURES_DIR, FIXTURE_RUNS, fixtureJsonl } from '../fixtures/runs/generate.ts';

const tmp = mkdtempSync(join(tmpdir(), 'reports-summary-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const T = '2026-11-20T02:00:00.000Z';

describe('fixture runs', () => {
  it('are exactly what generate.ts writes (regenerate with `npx tsx test/fixtures/runs/generate.ts`)', () => {
    for (const name of Object.keys(FIXTURE_RUNS)) {
      expect(readFileSync(join(FIXTURES_DIR, name, 'records.jsonl'), 'utf8'), name).toBe(fixtureJsonl(name));
    }
  });

  it('hold only records that validate against results/schema.ts', () => {
    for (const name of Object.keys(FIXTURE_RUNS)) expect(loadRun(join(FIXTURES_DIR, name)).problems, name).toEqual([]);
  });
});

describe('summarizeRun', () => {
  const sweep = summarizeRun(loadRun(join(FIXTURES_DIR, 'sweep')).records);

  it('groups cells into model/peft configs with params, memory and throughput', () => {
    // generate.ts SWEEP_CELLS: five configs; tiny-llama-3.1 + qlora peaks at 190 MiB, decodes 610 tok/s.
    expect(sweep.configs.map((c) => c.key)).toEqual([
      'tiny-llama-2/base', 'tiny-llama-2/lora', 'tiny-llama-3.1/lora', 'tiny-llama-3.1/qlora', 'tiny-llama-3.1/llama-adapter-v1',
    ]);
    const qlora = sweep.configs[3];
    expect(qlora).toMatchObject({ version: '3.1', peft: 'qlora', trainable_params: 16384, peak_rss_bytes: 190 * 2 ** 20, decode_tokens_per_s: 610 });
    expect(sweep.kernels).toHaveLength(4);
  });

  it('shows a failed cell as failed, never as a score', () => {
    // generate.ts: llama-adapter-v1's gsm8k cell wrote an error record and no metric.
    const adapter = sweep.configs.find((c) => c.peft === 'llama-adapter-v1');
    if (!adapter) throw new Error('fixture lost its llama-adapter-v1 config');
    expect(adapter.scores.some((s) => s.task === 'gsm8k')).toBe(false);
    expect(taskStatus(adapter, 'gsm8k', undefined)).toEqual({ status: 'failed', message: 'worker exited with signal SIGKILL (out of memory?)' });
    const md = summaryMarkdown([sweep], 'acc', []);
    const gsm8kRow = md.split('\n').find((l) => l.startsWith('| gsm8k'));
    expect(gsm8kRow?.trim().endsWith('| FAILED |')).toBe(true);
    const csvRow = resultsCsv([sweep]).split('\n').find((l) => l.includes('llama-adapter-v1,gsm8k'));
    // columns: run_id,model,version,peft,task,metric,value,stderr,n,status,error — the cell wrote no
    // metric, so metric and value are empty, never 0
    expect(csvRow).toBe('sweep,tiny-llama-3.1,3.1,llama-adapter-v1,gsm8k,,,,,failed,worker exited with signal SIGKILL (out of memory?)');
  });

  it('a failed shard marks the whole task failed even when another shard scored', () => {
    const records: RunRecord[] = [
      { kind: 'metric', run_id: 'r', cell_id: 'm/lora/piqa/0', time: T, task: 'piqa', metric: 'acc', value: 0.9, stderr: 0.01, n: 10, model: 'm', peft: 'lora' },
      { kind: 'error', run_id: 'r', cell_id: 'm/lora/piqa/1', time: T, message: 'OOM' },
    ];
    const [config] = summarizeRun(records).configs;
    expect(config?.failures).toEqual([{ cell_id: 'm/lora/piqa/1', task: 'piqa', stage: null, message: 'OOM' }]);
    if (config) expect(taskStatus(config, 'piqa', config.scores[0]).status).toBe('failed');
  });

  it('the last metric record of a task wins (a resumed cell re-writes it)', () => {
    const metric = (value: number): RunRecord => ({ kind: 'metric', run_id: 'r', cell_id: 'c', time: T, task: 't', metric: 'acc', value, stderr: null, n: 1, model: 'm', peft: null });
    expect(summarizeRun([metric(0.1), metric(0.2)]).configs[0]?.scores).toEqual([{ task: 't', metric: 'acc', value: 0.2, stderr: null, n: 1 }]);
  });
});

describe('cell identity', () => {
  it('learns model/peft from params records and falls back to the <model>/<peft>/<task> cell id', () => {
    const ids = cellIdentities([
      { kind: 'params', run_id: 'r', cell_id: 'cell-7', time: T, model: 'llama-2-7b', total_params: 1, active_params: 1, embedding_params: 0, trainable_params: 1, peft: { peft_type: 'LORA' }, components: {} },
      { kind: 'error', run_id: 'r', cell_id: 'cell-7', time: T, message: 'x', task: 'boolq' },
      { kind: 'error', run_id: 'r', cell_id: 'llama-3-8b/qlora/medqa', time: T, message: 'x' },
      { kind: 'error', run_id: 'r', cell_id: 'llama-3-8b/base/gsm8k', time: T, message: 'x' },
    ]);
    expect(ids.get('cell-7')).toEqual({ model: 'llama-2-7b', peft: 'lora', task: 'boolq' });
    expect(ids.get('llama-3-8b/qlora/medqa')).toEqual({ model: 'llama-3-8b', peft: 'qlora', task: 'medqa' });
    expect(ids.get('llama-3-8b/base/gsm8k')).toEqual({ model: 'llama-3-8b', peft: null, task: 'gsm8k' });
  });

  it('names PEFT methods from strings, objects and null', () => {
    expect([peftName(null), peftName('base'), peftName('lora'), peftName({ method: 'QLoRA' })]).toEqual([null, null, 'lora', 'qlora']);
  });

  it('reads the LLaMA version from zoo ids and HF repo names', () => {
    // Ids from harness/zoo and the meta-llama HF org; huggyllama/llama-65b names a size, not a version.
    expect(['llama-3.1-8b', 'tiny-llama-2', 'Meta-Llama-3-8B', 'Llama-4-Scout-17B-16E', 'meta-llama/Llama-3.2-1B', 'huggyllama/llama-65b'].map(llamaVersion))
      .toEqual(['3.1', '2', '3', '4', '3.2', null]);
  });

  it('puts tasks in their suites', () => {
    expect(['piqa', 'gsm8k', 'legalbench_abercrombie', 'medqa', 'mmlu_anatomy', 'legal/contract_nli', 'wikitext', 'medical-vqa-open'].map(suiteOf))
      .toEqual(['commonsense', 'arithmetic', 'legal', 'medical', 'medical', 'legal', 'other', 'medical-vqa']);
  });
});

describe('loadRun', () => {
  it('names the exact records.jsonl path it looked for', () => {
    const dir = join(tmp, 'empty-run');
    mkdirSync(dir);
    expect(() => loadRun(dir)).toThrow(ReportInputError);
    expect(() => loadRun(dir)).toThrow(`expected ${join(dir, 'records.jsonl')}`);
    expect(() => loadRun(join(tmp, 'nope'))).toThrow(`run directory not found: ${join(tmp, 'nope')}`);
  });

  it('keeps good records and reports skipped lines', () => {
    const dir = join(tmp, 'damaged');
    mkdirSync(dir);
    writeFileSync(join(dir, 'records.jsonl'), `${fixtureJsonl('hash-mismatch')}{"kind":"metric"}\n`);
    const run = loadRun(dir);
    expect(run.records).toHaveLength(5); // generate.ts hashMismatch(): manifest + 4 metrics
    expect(run.problems).toHaveLength(1);
    expect(run.problems[0]).toMatch(/records\.jsonl:6: invalid metric record/);
  });
});
