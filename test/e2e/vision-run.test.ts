// `llama-eval run --suite medical-vqa` as a user runs it (issue 10): the vision model on the float64
// reference backend scores the bundled synthetic image questions, the default ort backend gives the
// same per-sample results; a text-only model fails each cell with the image error while the run
// itself completes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RUN_COMMAND } from '../../harness/cli/run-args.ts';
import { readRecords } from '../../results/store.ts';
import { runCli, type CliResult } from './reports-cli-harness.ts';

const root = mkdtempSync(join(tmpdir(), 'vision-run-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
// Keep the response cache and the generated tiny checkpoints out of the user's ~/.cache.
process.env.XDG_CACHE_HOME = join(root, 'xdg');
const run = (model: string, out: string, backend: string[] = ['--backend', 'reference']) =>
  runCli(['run', '--suite', 'medical-vqa', '--model', model, ...backend, '--limit', '2', '--offline', '--no-history', '--out', join(root, out)], [RUN_COMMAND]);
// The reference run is shared: its own test checks it, and the ORT test compares against it.
let referenceRun: Promise<CliResult> | null = null;
const runReference = () => (referenceRun ??= run('tiny-llama-3.2-vision', 'vision'));
/** doc id -> the generated response and the metric values of each sample record of a run. */
const samplesOf = (out: string) => {
  const { records, problems } = readRecords(join(root, out, 'records.jsonl'));
  expect(problems).toEqual([]);
  return new Map(records.flatMap((x) => (x.kind === 'sample' ? [[`${x.task}/${x.doc_id}`, { response: x.response, metrics: x.metrics }] as const] : [])));
};

describe('llama-eval run --suite medical-vqa', () => {
  it('evaluates tiny-llama-3.2-vision with the images and prints its metrics', async () => {
    const r = await runReference();
    expect(r.code, r.err).toBe(0);
    for (const [task, metric] of [['medical-vqa-closed', 'closed_acc'], ['medical-vqa-open', 'open_exact_match'], ['medical-vqa-open', 'open_f1'], ['medical-vqa-open', 'open_recall']]) {
      expect(r.out).toMatch(new RegExp(`${task}\\s*│\\s*${metric}\\s*│\\s*\\d\\.\\d{4} ± \\d\\.\\d{4} \\(n=2\\)`));
    }
    const { records, problems } = readRecords(join(root, 'vision', 'records.jsonl'));
    expect(problems).toEqual([]);
    const samples = records.filter((x) => x.kind === 'sample');
    // --limit 2 per task: the first two closed (synth-1, synth-2) and open (synth-3, synth-5) questions of questions.jsonl (answer_type field).
    expect(samples.map((s) => s.kind === 'sample' && s.doc_id)).toEqual(['synth-1', 'synth-2', 'synth-3', 'synth-5']);
  }, 60_000);

  it('on the default ort backend gives the reference\'s response and scores for every sample', async () => {
    // LLaMA 3.2 Vision on ORT (runners/ort/mllama-runner.ts) against the float64 reference, the
    // oracle: greedy decoding from logits that agree within 1e-4 (test/parity/ort-mllama.test.ts)
    // yields the same tokens, so each sample's generated text and metrics are equal.
    const reference = await runReference(); // first: it generates the tiny checkpoint both runs read
    const ort = await run('tiny-llama-3.2-vision', 'vision-ort', []);
    expect(reference.code, reference.err).toBe(0);
    expect(ort.code, ort.err).toBe(0);
    const expected = samplesOf('vision');
    const got = samplesOf('vision-ort');
    expect([...got.keys()]).toEqual(['medical-vqa-closed/synth-1', 'medical-vqa-closed/synth-2', 'medical-vqa-open/synth-3', 'medical-vqa-open/synth-5']);
    expect(got).toEqual(expected);
    const { records } = readRecords(join(root, 'vision-ort', 'records.jsonl'));
    expect(records.find((x) => x.kind === 'manifest')).toMatchObject({ config: { backend: 'ort' } }); // the default backend
  }, 60_000);

  it('LLaMA 4 (tiny-llama-4-vision) on ort gives the reference\'s response and score, --limit 1', async () => {
    // Early fusion on ORT (runners/ort/llama4-*.ts) against the float64 reference, the oracle:
    // logprobs within 1e-4 (test/parity/ort-llama4-vision.test.ts), so greedy text and metrics agree.
    // One task only: the open one runs the same runner path (image + greedy generation) and would
    // double the time, most of it the reference's uncached 16-step decode.
    const limit1 = (out: string, backend: string) =>
      runCli(['run', '--task', 'medical-vqa-closed', '--model', 'tiny-llama-4-vision', '--backend', backend, '--limit', '1', '--offline', '--no-history', '--out', join(root, out)], [RUN_COMMAND]);
    const reference = await limit1('llama4-reference', 'reference'); // first: it generates the tiny checkpoint
    const ort = await limit1('llama4-ort', 'ort');
    expect(reference.code, reference.err).toBe(0);
    expect(ort.code, ort.err).toBe(0);
    const got = samplesOf('llama4-ort');
    // --limit 1: the first closed question of questions.jsonl (synth-1).
    expect([...got.keys()]).toEqual(['medical-vqa-closed/synth-1']);
    expect(got).toEqual(samplesOf('llama4-reference'));
    const { records } = readRecords(join(root, 'llama4-ort', 'records.jsonl'));
    expect(records.find((x) => x.kind === 'manifest')).toMatchObject({ config: { backend: 'ort' } });
  }, 60_000);

  it('fails each cell of a text-only model with the image error, and finishes the run', async () => {
    const r = await run('tiny-llama-3', 'text');
    expect(r.code).toBe(1);
    const failures = `${r.out}\n${r.err}`.match(/FAILED medical-vqa-(closed|open) \(tiny-llama-3 \/ base\): model tiny-llama-3: is text-only/g);
    expect(failures).toHaveLength(2);
  }, 40_000);
});
