// The streamed QLoRA load's memory contract, checked by instrumenting the load (not by timing or RSS):
// while the graph is built, at most one base linear is alive as fp32 (each is read, quantized and
// dropped before the next is read), every checkpoint tensor is read exactly once (no reference model,
// no second copy), and an NF4 checkpoint's linears are never read as fp32 at all. Plus bad input:
// a stored NF4 weight MatMulBnb4 cannot run as is, or of the wrong shape, is refused by name.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../results/errors.ts';
import { readCheckpointDir, type Checkpoint } from '../../runners/hf/checkpoint.ts';
import { textTensorSpecs } from '../../runners/hf/tensor-names.ts';
import { CheckpointWeights } from '../../runners/hf/weights.ts';
import { buildLlamaGraph } from '../../runners/ort/llama-graph.ts';
import { ortQloraPlanStreamed } from '../../runners/ort/llama-peft.ts';
import { writeNf4Checkpoint } from '../../runners/quant/nf4-checkpoint.ts';
import { readStoredNf4, type Nf4StreamEvent } from '../../runners/quant/nf4-stream.ts';
import { writeRawSafetensors, type RawTensor } from '../../runners/quant/safetensors-raw.ts';
import type { TensorSource } from '../../runners/reference-weights.ts';
import { ensureTinyCheckpoint } from '../../runners/tiny.ts';

const tmp = mkdtempSync(join(tmpdir(), 'peft-qlora-stream-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const tiny = (id: string): Checkpoint => readCheckpointDir(ensureTinyCheckpoint(id), id, 'tiny');

/** Builds the streamed QLoRA graph of `checkpoint`, logging every fp32 read and every NF4 load event. */
function instrumentedBuild(checkpoint: Checkpoint, peft: string) {
  const log: ({ kind: 'read'; name: string; elements: number } | Nf4StreamEvent)[] = [];
  const weights = CheckpointWeights.open(checkpoint.dir);
  try {
    const plan = ortQloraPlanStreamed(checkpoint, weights, peft, { seed: 5, onNf4: (e) => log.push(e) });
    const counted: TensorSource = {
      has: (name) => plan.weights.has(name),
      readFloat32: (name, options) => {
        const data = plan.weights.readFloat32(name, options);
        log.push({ kind: 'read', name, elements: data.length });
        return data;
      },
    };
    buildLlamaGraph(checkpoint.arch, counted, { temperatureTuning: null, peft: plan.peft.graph });
    return { log, nf4Weights: plan.nf4Weights, stored: new Set(weights.names()) };
  } finally {
    weights.close();
  }
}

describe('streamed QLoRA load', () => {
  for (const id of ['tiny-llama-2', 'tiny-llama-4']) {
    it(`${id}: one fp32 linear alive at a time, every tensor read once`, () => {
      const checkpoint = tiny(id);
      const { log, nf4Weights, stored } = instrumentedBuild(checkpoint, 'qlora:r=4,alpha=16');
      const linears = new Set(nf4Weights);
      // Every LLaMA linear but lm_head, e.g. tiny-llama-2's 2 layers x 7 projections.
      expect(linears.size).toBe(textTensorSpecs(checkpoint.arch).filter((s) => /_proj\.weight$|router\.weight$/.test(s.name)).length);
      let live = 0;
      let maxLive = 0;
      for (const e of log) {
        if (e.kind === 'fp32-read') maxLive = Math.max(maxLive, ++live);
        if (e.kind === 'fp32-dropped') live--;
        // A linear's fp32 read happens inside its own read/drop bracket, never while another is alive.
        if (e.kind === 'read' && linears.has(e.name)) expect(live).toBe(0);
      }
      expect(maxLive).toBe(1);
      expect(live).toBe(0);
      const reads = log.filter((e) => e.kind === 'read').map((e) => e.name);
      expect(new Set(reads).size).toBe(reads.length);
      // The checkpoint's tensors, each once: what the config names (tied models have no lm_head.weight).
      const expected = textTensorSpecs(checkpoint.arch).map((s) => s.name).filter((n) => stored.has(n));
      expect(new Set(reads)).toEqual(new Set(expected));
      expect(log.filter((e) => e.kind === 'fp32-dropped').map((e) => e.name).sort()).toEqual([...linears].sort());
    });
  }

  it('an NF4 checkpoint hands over its stored bytes: no linear is ever read as fp32', () => {
    const nf4Dir = join(tmp, 'tiny-llama-2-nf4');
    const quantized = writeNf4Checkpoint(tiny('tiny-llama-2'), nf4Dir);
    const { log, nf4Weights } = instrumentedBuild(readCheckpointDir(nf4Dir, 'nf4', 'path'), 'qlora:r=4,alpha=16');
    expect(nf4Weights.sort()).toEqual([...quantized].sort());
    expect(log.filter((e) => e.kind === 'fp32-read')).toEqual([]);
    expect(log.filter((e) => e.kind === 'nf4-read').map((e) => e.name).sort()).toEqual([...quantized].sort());
    const readNames = new Set(log.filter((e) => e.kind === 'read').map((e) => e.name));
    for (const name of quantized) expect(readNames.has(name)).toBe(false);
  });

  it('refuses a stored NF4 weight with another code book, and one of the wrong shape', () => {
    const src = tiny('tiny-llama-2');
    const good = join(tmp, 'good-nf4');
    writeNf4Checkpoint(src, good);
    const name = 'model.layers.0.self_attn.q_proj.weight';
    const weights = CheckpointWeights.open(good);
    const shape = [src.arch.text.numHeads * src.arch.text.headDim, src.arch.text.hiddenSize];
    try {
      expect(() => readStoredNf4(weights, name, [shape[0]!, shape[1]! + 1])).toThrow(InputError);
      expect(() => readStoredNf4(weights, name, [shape[0]!, shape[1]! + 1])).toThrow(/has shape \[\d+, \d+\], expected/);
      // Rewrite the checkpoint with FP4's code book on one weight (bitsandbytes' other 4-bit type).
      const tensors: RawTensor[] = weights.names().map((n) => {
        const info = weights.info(n);
        const bytes = weights.readBytes(n);
        if (n === `${name}.quant_map`) new Float32Array(bytes.buffer, bytes.byteOffset, 16).fill(0.5);
        return { name: n, dtype: info.dtype, shape: info.shape, bytes };
      });
      const bad = join(tmp, 'bad-nf4');
      writeRawSafetensors(join(tmp, 'bad-model.safetensors'), tensors);
      rmSync(bad, { recursive: true, force: true });
      writeNf4Checkpoint(src, bad);
      copyFileSync(join(tmp, 'bad-model.safetensors'), join(bad, 'model.safetensors'));
      const checkpoint = readCheckpointDir(bad, 'bad', 'path');
      expect(() => instrumentedBuild(checkpoint, 'qlora:r=4')).toThrow(InputError);
      expect(() => instrumentedBuild(checkpoint, 'qlora:r=4')).toThrow(/q_proj\.weight" has a quant_map other than bitsandbytes' NF4 code book/);
    } finally {
      weights.close();
    }
  });
});
