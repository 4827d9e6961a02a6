// The streamed QLoRA load (runners/ort/llama-peft.ts ortQloraPlanStreamed: each base linear read,
// quantized to NF4 and dropped while the graph is built) against the QLoRA ORT path that quantizes a
// whole reference model first (ortPeftPlanFor). Both must hand ORT the same graph: the same packed
// bytes and absmax per linear (nf4QuantizeDouble either way), the same LoRA feeds from the same seed,
// the same fp32 embeddings, norms and lm_head, so token_logprobs must agree exactly (max |diff| 0).
// An NF4 checkpoint (`llama-eval quantize --to nf4`, bitsandbytes' layout) loads its stored bytes
// without dequantizing and must give the same logprobs again. The reference forward bounds all three
// (issue 5's 1e-4), which ties the graph to an implementation that shares no code with it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../results/errors.ts';
import { readCheckpointDir, type Checkpoint } from '../../runners/hf/checkpoint.ts';
import { buildLlamaGraph } from '../../runners/ort/llama-graph.ts';
import { OrtLlamaModel, ortTokenLogprobs } from '../../runners/ort/llama-model.ts';
import { openOrtQloraModel, ortPeftPlanFor, ortQloraPlanStreamed } from '../../runners/ort/llama-peft.ts';
import { decodeModel } from '../../runners/ort/onnx-builder.ts';
import { CheckpointWeights } from '../../runners/hf/weights.ts';
import { writeNf4Checkpoint } from '../../runners/quant/nf4-checkpoint.ts';
import { loadReferenceFromCheckpoint } from '../../runners/reference-weights.ts';
import { referenceTokenLogprobs } from '../../runners/reference.ts';
import { ensureTinyCheckpoint } from '../../runners/tiny.ts';
import { maxAbsDiff, spreadIds } from './ort-helpers.ts';

// Tiny checkpoints from the shared cache (generated once); NF4 copies in a scratch directory.
const tmp = mkdtempSync(join(tmpdir(), 'nf4-stream-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const tiny = (id: string): Checkpoint => readCheckpointDir(ensureTinyCheckpoint(id), id, 'tiny');
const nf4Copies = new Map<string, Checkpoint>();
function nf4Copy(checkpoint: Checkpoint): Checkpoint {
  let copy = nf4Copies.get(checkpoint.id);
  if (!copy) {
    const dir = join(tmp, `${checkpoint.id}-nf4`);
    writeNf4Checkpoint(checkpoint, dir);
    copy = readCheckpointDir(dir, `${checkpoint.id}-nf4`, 'path');
    nf4Copies.set(checkpoint.id, copy);
  }
  return copy;
}

const SPECS: [string, string][] = [
  ['tiny-llama-2', 'qlora:r=4,alpha=16'],
  ['tiny-llama-3', 'qlora:r=4,alpha=16,targets=q_proj+v_proj+down_proj'],
  ['tiny-llama-4', 'qlora:r=2,alpha=4'],
];

async function logprobs(checkpoint: Checkpoint, open: () => Promise<OrtLlamaModel>, ids: number[]): Promise<(number | null)[]> {
  const model = await open();
  try {
    return await ortTokenLogprobs(model, ids);
  } finally {
    await model.close();
  }
}

describe('QLoRA streamed from the checkpoint', () => {
  for (const [id, spec] of SPECS) {
    it(`${id} ${spec}: float checkpoint and NF4 checkpoint give the whole-model QLoRA path's logprobs exactly`, async () => {
      const checkpoint = tiny(id);
      const ids = spreadIds(id === 'tiny-llama-4' ? 40 : 16, checkpoint.arch.text.vocabSize);
      const base = loadReferenceFromCheckpoint(checkpoint);
      const plan = ortPeftPlanFor(base, spec, { seed: 7 });
      const session = { intraOpThreads: 1 };
      const today = await logprobs(checkpoint, () => OrtLlamaModel.create(checkpoint.arch, checkpoint.config, plan.weights, { ...session, peft: plan.peft }), ids);
      const streamed = await logprobs(checkpoint, async () => (await openOrtQloraModel(checkpoint, spec, { ...session, seed: 7 })).model, ids);
      expect(maxAbsDiff(streamed, today)).toBe(0);

      const nf4 = nf4Copy(checkpoint);
      const fromNf4 = await logprobs(nf4, async () => (await openOrtQloraModel(nf4, spec, { ...session, seed: 7 })).model, ids);
      expect(maxAbsDiff(fromNf4, today)).toBe(0);

      // Not a vacuous match: the adapter moves the logprobs, and all paths stay within issue 5's 1e-4 of
      // the reference. On tiny-llama-4 only (512-token vocabulary): the float64 forward over a 32K or
      // 128K vocabulary costs seconds, and peft-ort-unmerged.test.ts bounds ortPeftPlanFor's QLoRA graph
      // against it on tiny-llama-2/3 already (equal to this one, as asserted above).
      if (id !== 'tiny-llama-4') return;
      expect(maxAbsDiff(streamed, referenceTokenLogprobs(plan.adapted, ids))).toBeLessThanOrEqual(1e-4);
      expect(maxAbsDiff(streamed, referenceTokenLogprobs(base, ids))).toBeGreaterThan(1e-4);
    });
  }

  it('loads an NF4 checkpoint with no adapter: the NF4 base model (a zero-init QLoRA adapter adds exactly 0)', async () => {
    const checkpoint = tiny('tiny-llama-4');
    const ids = spreadIds(40, checkpoint.arch.text.vocabSize);
    const plan = ortPeftPlanFor(loadReferenceFromCheckpoint(checkpoint), 'qlora:r=2', { init: 'zero' });
    const session = { intraOpThreads: 1 };
    const zeroAdapter = await logprobs(checkpoint, () => OrtLlamaModel.create(checkpoint.arch, checkpoint.config, plan.weights, { ...session, peft: plan.peft }), ids);
    const nf4 = nf4Copy(checkpoint);
    const opened = await openOrtQloraModel(nf4, undefined, session);
    expect(opened.label).toBeNull();
    expect(maxAbsDiff(await logprobs(nf4, async () => opened.model, ids), zeroAdapter)).toBe(0);
  });

  it('builds byte-identical graphs from the float checkpoint and from the NF4 checkpoint', () => {
    const checkpoint = tiny('tiny-llama-4');
    const build = (c: Checkpoint) => {
      const weights = CheckpointWeights.open(c.dir);
      try {
        const plan = ortQloraPlanStreamed(c, weights, 'qlora:r=4,alpha=16', { seed: 3 });
        return buildLlamaGraph(c.arch, plan.weights, { temperatureTuning: null, peft: plan.peft.graph });
      } finally {
        weights.close();
      }
    };
    const fromFloat = decodeModel(build(checkpoint)).graph!;
    const fromNf4 = decodeModel(build(nf4Copy(checkpoint))).graph!;
    const bytes = (g: typeof fromFloat) => new Map(g.initializer!.map((t) => [t.name!, Buffer.from(t.rawData!).toString('base64')]));
    expect(bytes(fromNf4)).toEqual(bytes(fromFloat));
    expect(fromFloat.node!.filter((n) => n.opType === 'MatMulBnb4').length).toBeGreaterThan(0);
  });

  it('refuses adapters that need the whole base model, naming why', () => {
    const checkpoint = tiny('tiny-llama-2');
    const weights = CheckpointWeights.open(checkpoint.dir);
    try {
      expect(() => ortQloraPlanStreamed(checkpoint, weights, 'qlora:r=4,dora=true')).toThrow(InputError);
      expect(() => ortQloraPlanStreamed(checkpoint, weights, 'qlora:r=4,dora=true')).toThrow(/DoRA normalises by the base weights/);
      expect(() => ortQloraPlanStreamed(checkpoint, weights, 'qlora:r=4,save=o_proj')).toThrow(/modules_to_save/);
      expect(() => ortQloraPlanStreamed(checkpoint, weights, 'adapter-v2')).toThrow(/adapter-v2 adapters are applied to the reference model/);
      expect(() => ortQloraPlanStreamed(checkpoint, weights, 'lora:r=4')).toThrow(/not QLoRA/);
      expect(() => ortQloraPlanStreamed(checkpoint, weights, undefined)).toThrow(/nothing to quantize/);
    } finally {
      weights.close();
    }
  });
});
