import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../runners/arch.ts';
import { countModelParams } from '../../harness/params/index.ts';
import { zooEntry } from '../../harness/zoo.ts';
import { InputError } from '../../results/errors.ts';
import { CheckpointWeights } from '../../runners/hf/weights.ts';
import { writeTinyCheckpoint } from '../../runners/tiny.ts';
import { erf, gelu, layerNorm } from '../../runners/vision/math.ts';
import { mllamaCrossAttentionLayer } from '../../runners/vision/mllama-cross-attention.ts';
import { assertAcceptsImages, encodeImage, openMllamaReference, type MllamaReference } from '../../runners/vision/mllama-checkpoint.ts';
import { mllamaVisionForward } from '../../runners/vision/mllama-reference.ts';

describe('vision math', () => {
  it('erf and exact GELU match tabulated values', () => {
    // Abramowitz & Stegun table 7.1 / scipy.special.erf: erf(0.5), erf(1), erf(2), erf(3.5).
    expect(erf(0.5)).toBeCloseTo(0.5204998778130465, 14);
    expect(erf(1)).toBeCloseTo(0.8427007929497149, 14);
    expect(erf(-2)).toBeCloseTo(-0.9953222650189527, 14);
    expect(erf(3.5)).toBeCloseTo(0.9999992569016276, 14);
    // GELU(1) = Φ(1) = 0.8413447460685429 (standard normal CDF table); GELU(-1) = -(1 - Φ(1)).
    expect(gelu(1)).toBeCloseTo(0.8413447460685429, 14);
    expect(gelu(-1)).toBeCloseTo(-0.15865525393145707, 14);
  });

  it('LayerNorm uses the biased variance', () => {
    // By hand: x = [1, 2, 3], mean 2, var 2/3 -> (x - 2) / sqrt(2/3) = [-1.2247.., 0, 1.2247..].
    const y = layerNorm([1, 2, 3], [1, 1, 2], [0, 5, 0], 0);
    expect(y[0]).toBeCloseTo(-Math.sqrt(1.5), 14);
    expect(y[1]).toBeCloseTo(5, 14);
    expect(y[2]).toBeCloseTo(2 * Math.sqrt(1.5), 14);
  });
});

describe('mllama cross-attention layer', () => {
  // Hand weights: hidden 2, one head, v_proj = o_proj = identity, q/k zero (uniform attention),
  // attention gate atanh(0.5) (tanh -> 0.5), MLP weights zero (MLP branch 0), norms 1.
  const eye = Float32Array.from([1, 0, 0, 1]);
  const zero = new Float32Array(4);
  const weights = (attnGate: number): Record<string, Float32Array> => {
    const p = 'language_model.model.layers.0';
    return {
      [`${p}.cross_attn.q_proj.weight`]: zero, [`${p}.cross_attn.k_proj.weight`]: zero,
      [`${p}.cross_attn.v_proj.weight`]: eye, [`${p}.cross_attn.o_proj.weight`]: eye,
      [`${p}.cross_attn.q_norm.weight`]: Float32Array.from([1, 1]), [`${p}.cross_attn.k_norm.weight`]: Float32Array.from([1, 1]),
      [`${p}.cross_attn_attn_gate`]: Float32Array.from([attnGate]), [`${p}.cross_attn_mlp_gate`]: Float32Array.from([1]),
      [`${p}.input_layernorm.weight`]: Float32Array.from([1, 1]), [`${p}.post_attention_layernorm.weight`]: Float32Array.from([1, 1]),
      [`${p}.mlp.gate_proj.weight`]: zero, [`${p}.mlp.up_proj.weight`]: zero, [`${p}.mlp.down_proj.weight`]: zero,
    };
  };
  const arch = { hiddenSize: 2, numHeads: 1, numKvHeads: 1, intermediateSize: 2, rmsNormEps: 1e-6 };
  const getter = (w: Record<string, Float32Array>) => (name: string) => w[name] ?? (() => { throw new Error(`no ${name}`); })();
  const img = [Float64Array.from([3, -1]), Float64Array.from([1, 1])];
  const x = [Float64Array.from([1, 2]), Float64Array.from([0, 0]), Float64Array.from([4, 4])];

  it('adds tanh(gate) times the attended image value, honouring the tile mask', () => {
    const g = getter(weights(Math.atanh(0.5)));
    // One token per tile. Row 0 sees tile 0 only -> x + 0.5 * [3, -1]; row 1 sees tile 1 only ->
    // 0.5 * [1, 1]; row 2 sees no tile -> HF zeroes its mask row, so it attends uniformly to both:
    // x + 0.5 * mean = [4, 4] + 0.5 * [2, 0].
    const out = mllamaCrossAttentionLayer(x, img, g, 0, arch, { tokensPerTile: 1, tileMask: [[1, 0], [0, 1], [0, 0]] });
    // The gate is stored as float32, so tanh(gate) is 0.5 to ~1e-8.
    const close = (got: Float64Array, want: number[]) => want.forEach((w, i) => expect(got[i]).toBeCloseTo(w, 7));
    close(out[0]!, [2.5, 1.5]);
    close(out[1]!, [0.5, 0.5]);
    close(out[2]!, [5, 4]);
  });

  it('is the identity with zero-initialised gates (HF init: cross_attn_attn_gate = mlp_gate = 0)', () => {
    const out = mllamaCrossAttentionLayer(x, img, getter(weights(0)), 0, arch);
    expect(out.map((r) => [...r])).toEqual(x.map((r) => [...r]));
  });

  it('rejects a mask with the wrong number of rows', () => {
    expect(() => mllamaCrossAttentionLayer(x, img, getter(weights(0)), 0, arch, { tokensPerTile: 1, tileMask: [[1, 1]] })).toThrow(InputError);
  });
});

describe('tiny-llama-3.2-vision', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tiny-vision-'));
  let ref: MllamaReference;
  beforeAll(() => {
    writeTinyCheckpoint('tiny-llama-3.2-vision', dir);
    ref = openMllamaReference(dir);
  }, 60_000);
  afterAll(() => {
    ref?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores exactly the hand-counted parameters, as params counts them', () => {
    // Hand count (vision hidden 32, 3 channels, patch 8, 4 tiles, 8 ratios + padding row, 5 tokens
    // per tile): patch 32*3*64 = 6144; class 32; gated pos 1 + 5*32 + 9*4*5*32 = 5921; pre/post tile
    // 2 * (9*4*32 + 1) = 2306; layernorm_pre/post 128; local layer 4*32*32 + (32*64+64) + (64*32+32)
    // + 2*64 = 8416, x3 = 25248; global 8416 + 2 gates = 8418; projector 96*64 + 64 = 6208 -> 54405.
    // Text: embed (128256+8)*64 = 8208896; lm_head 128256*64 = 8208384; self layer 64*64*2 + 32*64*2
    // + 3*176*64 + 2*64 = 46208 (x2); cross layer 46208 + q_norm 16 + k_norm 16 + 2 gates = 46242;
    // final norm 64 -> 16556002.
    const w = CheckpointWeights.open(dir);
    let vision = 0;
    let text = 0;
    for (const name of w.names()) {
      const n = w.info(name).shape.reduce((a, b) => a * b, 1);
      if (name.startsWith('vision_model.') || name.startsWith('multi_modal_projector.')) vision += n;
      else text += n;
    }
    w.close();
    expect(vision).toBe(54405);
    expect(text).toBe(16556002);
    const counted = countModelParams(parseModelConfig(zooEntry('tiny-llama-3.2-vision')!.config, 'zoo'));
    expect(counted.vision).toBe(54405);
    expect(counted.total).toBe(16556002); // params reports the text total and vision_params apart
  });

  it('runs an image through preprocessing, the vision tower, the projector and a cross-attention layer', async () => {
    // 24 wide x 16 high, tile 16: canvas 16x32 (1 x 2 tiles, no resize), aspect_ratio_id 2.
    const raw = new Uint8Array(24 * 16 * 3).map((_, i) => (i * 37) % 256);
    const png = await sharp(raw, { raw: { width: 24, height: 16, channels: 3 } }).png().toBuffer();
    const { image, states } = await encodeImage(ref, png, 'synthetic.png');
    expect(image.aspectRatioId).toBe(2);
    expect(image.aspectRatioMask).toEqual([1, 1, 0, 0]);
    // 4 tiles x (2*2 patches + class token) rows of the text width.
    expect(states).toHaveLength(20);
    expect(states.every((s) => s.length === 64 && s.every(Number.isFinite))).toBe(true);
    const hidden = [Float64Array.from({ length: 64 }, (_, i) => Math.sin(i))];
    const out = mllamaCrossAttentionLayer(hidden, states, ref.get, 1, ref.cross);
    expect(out[0]!.some((v, i) => v !== hidden[0]![i])).toBe(true);
  });

  it('takes the intermediate feature of a layer before that layer runs (Meta llama-models VisionEncoder)', () => {
    // Meta's VisionEncoder appends x to the intermediate list *before* block idx runs. Make local
    // layer 1 the identity (o_proj, fc2 and its bias zero): then the states entering layers 1 and 2
    // are equal, so the two intermediate slices must be equal; "output of layer i" would differ.
    const zeroed = new Set(['o_proj.weight', 'fc2.weight', 'fc2.bias'].map((s) => `vision_model.transformer.layers.1.${s.startsWith('o_') ? 'self_attn' : 'mlp'}.${s}`));
    const get = (name: string) => (zeroed.has(name) ? new Float32Array(ref.get(name).length) : ref.get(name));
    const pixels = new Float64Array(4 * 3 * 16 * 16).map((_, i) => Math.cos(i));
    const input = { pixelValues: pixels, aspectRatioId: 6, aspectRatioMask: [1, 1, 1, 1] };
    const row = mllamaVisionForward(input, get, ref.vision)[3]!;
    expect([...row.subarray(32, 64)]).toEqual([...row.subarray(64, 96)]);
    const plain = mllamaVisionForward(input, ref.get, ref.vision)[3]!;
    expect([...plain.subarray(32, 64)]).not.toEqual([...plain.subarray(64, 96)]);
  });

  it('refuses images for a text-only model and wrongly sized pixel values', () => {
    const text = parseModelConfig(zooEntry('tiny-llama-3')!.config, 'zoo');
    expect(() => assertAcceptsImages(text, 'tiny-llama-3')).toThrow(/tiny-llama-3: is text-only/);
    expect(() => mllamaVisionForward({ pixelValues: new Float64Array(10), aspectRatioId: 1, aspectRatioMask: [1, 0, 0, 0] }, ref.get, ref.vision)).toThrow(InputError);
  });
});
