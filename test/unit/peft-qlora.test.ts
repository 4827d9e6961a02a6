// QLoRA on the reference forward: LoRA on an NF4 (double-quant) base. PEFT's init is the identity on
// the quantized base, merged equals unmerged, and an adapter directory on a quantized checkpoint read
// from disk gives the same model as the `qlora` spec string on the float checkpoint.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parsePeftSpec, type LoraSpec } from '../../harness/peft/index.ts';
import { readCheckpointDir } from '../../runners/hf/checkpoint.ts';
import { applyPeftToReference, writeLoraAdapter } from '../../runners/peft/index.ts';
import { loadReferenceFromNf4Checkpoint, writeNf4Checkpoint } from '../../runners/quant/nf4-checkpoint.ts';
import { nf4QuantizedModules, quantizeReferenceNf4 } from '../../runners/quant/nf4-model.ts';
import { loadReferenceFromCheckpoint, type ReferenceModel } from '../../runners/reference-weights.ts';
import { referenceLogits } from '../../runners/reference.ts';
import { ensureTinyCheckpoint } from '../../runners/tiny.ts';

const tmp = mkdtempSync(join(tmpdir(), 'peft-qlora-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const env = { LLAMA_EVAL_CACHE: join(tmp, 'cache') };
const load = (id: string): ReferenceModel => loadReferenceFromCheckpoint(readCheckpointDir(ensureTinyCheckpoint(id, { env }), id, 'tiny'));
const ids = [1, 17, 99, 5, 300];
const maxDiff = (a: Float64Array[], b: Float64Array[]) => {
  let m = 0;
  a.forEach((row, i) => row.forEach((x, j) => (m = Math.max(m, Math.abs(x - b[i]![j]!)))));
  return m;
};

describe('QLoRA', () => {
  for (const id of ['tiny-llama-2', 'tiny-llama-3', 'tiny-llama-4']) {
    const model = load(id);
    it(`${id}: B = 0 gives exactly the NF4 base; merged equals unmerged within 1e-9`, () => {
      const nf4 = referenceLogits(quantizeReferenceNf4(model), ids);
      expect(maxDiff(referenceLogits(applyPeftToReference(model, 'qlora:r=4', { init: 'zero' }), ids), nf4)).toBe(0);
      const merged = referenceLogits(applyPeftToReference(model, 'qlora:r=4,alpha=16', { mode: 'merged', seed: 9 }), ids);
      const unmerged = referenceLogits(applyPeftToReference(model, 'qlora:r=4,alpha=16', { mode: 'unmerged', seed: 9 }), ids);
      expect(maxDiff(merged, unmerged)).toBeLessThan(1e-9);
      expect(maxDiff(merged, nf4)).toBeGreaterThan(1e-4);
    });
  }

  it('quantizes every Linear but lm_head (Llama 4: the router and shared expert too)', () => {
    const keys = nf4QuantizedModules(load('tiny-llama-4'));
    expect(keys).toContain('model.layers.1.feed_forward.router');
    expect(keys).toContain('model.layers.1.feed_forward.shared_expert.down_proj');
    expect(keys).toContain('model.layers.0.feed_forward.gate_proj');
    expect(keys).not.toContain('lm_head');
  });

  it('an adapter directory on an NF4 checkpoint from disk equals the qlora spec on the float model', () => {
    const srcDir = ensureTinyCheckpoint('tiny-llama-3', { env });
    const nf4Dir = join(tmp, 'nf4');
    const base = readCheckpointDir(srcDir, 'tiny-llama-3', 'tiny');
    writeNf4Checkpoint(base, nf4Dir);
    const spec = parsePeftSpec('qlora:r=4,alpha=16') as LoraSpec;
    const adapterDir = join(tmp, 'adapter');
    writeLoraAdapter(adapterDir, spec, base.arch.text, 21);
    const fromDisk = applyPeftToReference(loadReferenceFromNf4Checkpoint(readCheckpointDir(nf4Dir, 'nf4', 'path')), adapterDir);
    const fromSpec = applyPeftToReference(load('tiny-llama-3'), 'qlora:r=4,alpha=16', { seed: 21 });
    expect(maxDiff(referenceLogits(fromDisk, ids), referenceLogits(fromSpec, ids))).toBe(0);
  });
});
