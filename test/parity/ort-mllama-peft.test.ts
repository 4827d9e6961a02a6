// --peft on LLaMA 3.2 Vision on ORT (runners/ort/mllama-peft.ts) against the float64 reference with the
// same adapter (runners/peft applyPeftToReference; the reference itself is checked against PEFT's
// forward in test/unit/peft-mllama.test.ts). Issue 5 / 10 acceptance: random non-zero adapter weights
// and an image, token logprobs within 1e-4; zero-init adapters equal the base graph exactly.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../results/errors.ts';
import { readCheckpointDir, type Checkpoint } from '../../runners/hf/checkpoint.ts';
import { logSoftmaxRow } from '../../runners/ort/llama-model.ts';
import { OrtMllamaModel } from '../../runners/ort/mllama-model.ts';
import { mllamaPeftPlan } from '../../runners/ort/mllama-peft.ts';
import { applyPeftToReference } from '../../runners/peft/index.ts';
import { withVisualQuery } from '../../runners/peft/visual.ts';
import { linear, logSoftmax } from '../../runners/reference-ops.ts';
import { referenceHidden, type ReferenceModel } from '../../runners/reference.ts';
import { loadReferenceModel } from '../../runners/reference-weights.ts';
import { ensureTinyCheckpoint } from '../../runners/tiny.ts';
import { openMllamaReference, type MllamaReference } from '../../runners/vision/mllama-checkpoint.ts';
import { preprocessImage } from '../../runners/vision/mllama-preprocess.ts';
import { mllamaProject, mllamaVisionForward } from '../../runners/vision/mllama-reference.ts';
import { crossAttentionTileMask } from '../../runners/vision/mllama-text.ts';
import { sharpenedWeights } from './ort-helpers.ts';

const ID = 'tiny-llama-3.2-vision';
const IMAGE_TOKEN = 128256; // zoo config image_token_index
const VOCAB = 128256;
const TOLERANCE = 1e-4;
const root = mkdtempSync(join(tmpdir(), 'ort-mllama-peft-'));
const env = { ...process.env, LLAMA_EVAL_CACHE: join(root, 'cache'), HF_HUB_CACHE: join(root, 'hub') };
// <|image|> mid-sequence: rows before it see no tile, rows after it see the 2 real tiles.
const IDS = [128000, 791, IMAGE_TOKEN, 6460, 374, 264, 1000, 2000];
const ROWS = IDS.map((_, i) => i).slice(2, -1); // rows that predict a text token after the image
let checkpoint: Checkpoint;
let plain: MllamaReference;
let sharp4: MllamaReference;
let base: ReferenceModel;
let png: Uint8Array;
let states: Float64Array[];
let numTiles: number;

beforeAll(async () => {
  checkpoint = readCheckpointDir(ensureTinyCheckpoint(ID, { env }), ID, 'tiny');
  plain = openMllamaReference(checkpoint.dir);
  // Weights x4, as test/parity/ort-mllama.test.ts: attention far from uniform, so a misplaced adapter shows.
  const source = sharpenedWeights(checkpoint, 4);
  sharp4 = { ...plain, get: (name) => source.readFloat32(name), close: () => undefined };
  base = loadReferenceModel(sharp4.arch, checkpoint.config, { has: () => true, readFloat32: (name) => sharp4.get(name) });
  // 24 x 16 RGB: two real 16-px tiles and two padding tiles.
  const raw = new Uint8Array(24 * 16 * 3).map((_, i) => (i * 37) % 256);
  png = new Uint8Array(await sharp(raw, { raw: { width: 24, height: 16, channels: 3 } }).png().toBuffer());
  const image = await preprocessImage(png, 'small', sharp4.processor);
  numTiles = image.numTiles;
  states = mllamaProject(mllamaVisionForward(image, sharp4.get, sharp4.vision), sharp4.get, sharp4.vision.visionOutputDim, sharp4.arch.text.hiddenSize);
}, 60_000);
afterAll(() => {
  plain?.close();
  rmSync(root, { recursive: true, force: true });
});

/** Reference log-softmax rows at ROWS with the image (and V2's visual query, as the reference runner). */
function referenceRows(model: ReferenceModel): Float64Array[] {
  const tokensPerTile = states.length / 4;
  const adapted = withVisualQuery(model, states.slice(0, numTiles * tokensPerTile));
  const hidden = referenceHidden(adapted, IDS, { states, mask: { tokensPerTile, tileMask: crossAttentionTileMask(IDS, IMAGE_TOKEN, numTiles, 4) } });
  return ROWS.map((r) => logSoftmax(linear(adapted.lmHead, hidden[r]!, VOCAB, adapted.text.hiddenSize)));
}

/** ORT log-softmax rows at ROWS: the runner's path (vision graph, then the text graph with the adapter). */
async function ortRows(spec: string | null, init: 'random' | 'zero', seed: number): Promise<Float64Array[]> {
  const plan = spec === null ? null : mllamaPeftPlan(sharp4, base, spec, { init, seed });
  const model = await OrtMllamaModel.create(plan ? { ...sharp4, get: plan.get } : sharp4, { intraOpThreads: 1 }, plan ?? undefined);
  try {
    const encoded = await model.encodeImage(png, 'small');
    const peftFeeds = plan?.visualFeeds?.(encoded.states, encoded.numTiles * (model.shape.tokens / model.shape.tiles));
    const tileMask = crossAttentionTileMask(IDS, IMAGE_TOKEN, encoded.numTiles, 4);
    const { logits } = await model.forward({ ids: IDS, past: model.emptyCache(), image: { encoded, tileMask }, rows: ROWS, peftFeeds });
    return ROWS.map((_, i) => Float64Array.from(logSoftmaxRow(logits, i, VOCAB)));
  } finally {
    await model.close();
  }
}

const maxDiff = (a: Float64Array[], b: Float64Array[]) => a.reduce((m, row, i) => row.reduce((mm, v, j) => Math.max(mm, Math.abs(v - b[i]![j]!)), m), 0);

describe('--peft on mllama, ORT vs float64 reference with an image, weights x4', () => {
  // Every supported method, random non-zero adapter weights (seeded): LoRA branches on the
  // self-attention layers plus merged LoRA on the cross-attention layer; DoRA; QLoRA (NF4
  // MatMulBnb4); LLaMA-Adapter V1 prompts; V2 prompts + bias/scale/norms + its visual path.
  const SPECS = [
    'lora:r=4,alpha=8,targets=all-linear',
    'lora:r=2,alpha=4,dora=true,targets=q_proj+v_proj+down_proj',
    'qlora:r=4',
    'adapter-v1:layers=2,len=3',
    'adapter-v2:layers=1,len=2,visual_dim=4,visual_depth=1,visual_heads=2',
  ];
  it.each(SPECS)('%s: token logprobs within 1e-4, and the adapter moves them', async (spec) => {
    const adapted = applyPeftToReference(base, spec, { mode: 'unmerged', init: 'random', seed: 7 });
    const expected = referenceRows(adapted);
    expect(maxDiff(await ortRows(spec, 'random', 7), expected)).toBeLessThanOrEqual(TOLERANCE);
    // Decisive: the adapter changes the reference's logprobs far beyond the tolerance.
    expect(maxDiff(expected, referenceRows(base))).toBeGreaterThan(1e-2);
  }, 30_000);

  it('zero-init LoRA and V2 (prompts, zero gates, identity scale, zero bias) graphs give exactly the base graph\'s logits', async () => {
    const plainRows = await ortRows(null, 'zero', 0);
    for (const spec of ['lora:r=4,targets=all-linear', 'adapter-v2:layers=1,len=2']) {
      expect(maxDiff(await ortRows(spec, 'zero', 0), plainRows), spec).toBe(0);
    }
  }, 30_000);

  it('refuses LLaMA-Excitor with an InputError naming the method', () => {
    expect(() => mllamaPeftPlan(sharp4, base, 'excitor')).toThrow(InputError);
    expect(() => mllamaPeftPlan(sharp4, base, 'excitor')).toThrow(/LLaMA-Excitor is not supported on mllama/);
  });
});
