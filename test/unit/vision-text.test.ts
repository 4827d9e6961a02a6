// The text forward of tiny-llama-3.2-vision with an image (the vision hook in runners/reference.ts),
// and image requests through the reference runner.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../runners/arch.ts';
import { zooEntry } from '../../harness/zoo.ts';
import { InputError } from '../../results/errors.ts';
import { CheckpointWeights } from '../../runners/hf/weights.ts';
import { referenceLogits, type ReferenceModel } from '../../runners/reference.ts';
import { ReferenceRunner } from '../../runners/reference-runner.ts';
import { loadReferenceModel, type TensorSource } from '../../runners/reference-weights.ts';
import { writeTinyCheckpoint } from '../../runners/tiny.ts';
import { encodeImage, openMllamaReference, type MllamaReference } from '../../runners/vision/mllama-checkpoint.ts';
import { crossAttentionTileMask, referenceVisionLogits, referenceVisionTokenLogprobs } from '../../runners/vision/mllama-text.ts';
import { rejectImages } from '../../runners/vision/images.ts';
import { CachedRunner } from '../../runners/cached.ts';
import { NullRunner } from '../../runners/null.ts';
import type { GenerateRequest } from '../../runners/types.ts';

const ID = 'tiny-llama-3.2-vision';
const IMAGE_TOKEN = 128256; // zoo config image_token_index
const root = mkdtempSync(join(tmpdir(), 'vision-text-'));
const dir = join(root, 'ckpt');
const env = { ...process.env, LLAMA_EVAL_CACHE: join(root, 'cache'), HF_HUB_CACHE: join(root, 'hub') };
let ref: MllamaReference;
let weights: CheckpointWeights;
let states: Float64Array[];
let otherStates: Float64Array[];
let pngA: Uint8Array;
let pngB: Uint8Array;

const png = async (seed: number): Promise<Uint8Array> => {
  // 24 x 16 RGB: two 16-px tiles wide after the processor's canvas fit (as in vision-mllama.test.ts).
  const raw = new Uint8Array(24 * 16 * 3).map((_, i) => (i * seed) % 256);
  return new Uint8Array(await sharp(raw, { raw: { width: 24, height: 16, channels: 3 } }).png().toBuffer());
};

/** The tiny checkpoint with every tensor whose name ends in one of `zeroed` replaced by zeros. */
function withZeros(source: CheckpointWeights, zeroed: string[]): TensorSource {
  return {
    has: (name) => source.has(name),
    readFloat32: (name, options) => {
      const t = source.readFloat32(name, options);
      return zeroed.some((z) => name.endsWith(z)) ? new Float32Array(t.length) : t;
    },
  };
}

const arch = () => parseModelConfig(zooEntry(ID)!.config, 'zoo');
const model = (source: TensorSource): ReferenceModel => loadReferenceModel(arch(), zooEntry(ID)!.config as Record<string, unknown>, source);
// <|image|> mid-sequence: rows 0-2 precede it (no tile visible), rows 3-5 see the 2 real tiles.
const IDS = [128000, 791, 6460, IMAGE_TOKEN, 374, 264];
const image = (s: Float64Array[], ids = IDS) => ({ states: s, mask: { tokensPerTile: s.length / 4, tileMask: crossAttentionTileMask(ids, IMAGE_TOKEN, 2, 4) } });

beforeAll(async () => {
  mkdirSync(dir, { recursive: true });
  writeTinyCheckpoint(ID, dir);
  ref = openMllamaReference(dir);
  weights = CheckpointWeights.open(dir);
  pngA = await png(37);
  pngB = await png(101);
  states = (await encodeImage(ref, pngA, 'a.png')).states;
  otherStates = (await encodeImage(ref, pngB, 'b.png')).states;
}, 60_000);
afterAll(() => {
  ref?.close();
  weights?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('mllama text forward with an image', () => {
  it('builds HF cross-attention masks from the <|image|> position', () => {
    // MllamaProcessor: rows before <|image|> see nothing; from it on, the image's real tiles only.
    expect(crossAttentionTileMask([1, IMAGE_TOKEN, 2], IMAGE_TOKEN, 2, 4)).toEqual([[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0]]);
    expect(crossAttentionTileMask([1, 2], IMAGE_TOKEN, 3, 4)).toEqual([[0, 0, 0, 0], [0, 0, 0, 0]]);
  });

  it('with all cross-attention gates 0 equals the text-only forward (HF init)', () => {
    const m = model(withZeros(weights, ['cross_attn_attn_gate', 'cross_attn_mlp_gate']));
    // tanh(0) = 0: both residual branches vanish, so the layer is the identity, which is what
    // HF's text-only path (cross-attention layers skipped) computes.
    const withImage = referenceVisionLogits(m, IDS, image(states));
    const textOnly = referenceLogits(m, IDS);
    withImage.forEach((row, i) => expect([...row]).toEqual([...textOnly[i]!]));
  });

  it('with the tiny model\'s gates (1) the image changes the logits, and only from <|image|> on', () => {
    const m = model(weights);
    const textOnly = referenceLogits(m, IDS);
    const a = referenceVisionLogits(m, IDS, image(states));
    const b = referenceVisionLogits(m, IDS, image(otherStates));
    const maxDiff = (x: Float64Array, y: Float64Array) => x.reduce((d, v, j) => Math.max(d, Math.abs(v - y[j]!)), 0);
    for (const row of [3, 4, 5]) {
      expect(maxDiff(a[row]!, textOnly[row]!)).toBeGreaterThan(1e-6);
      expect(maxDiff(a[row]!, b[row]!)).toBeGreaterThan(1e-6);
    }
    // Rows before <|image|> go through the layer's attention (HF un-masks them) but not its MLP;
    // they still differ from the text-only path, yet the image they see is all of it, whichever it is.
    expect(maxDiff(a[0]!, textOnly[0]!)).toBeGreaterThan(1e-6);
    const lp = referenceVisionTokenLogprobs(m, IDS, image(states));
    // Entry 0 has no context; entry 3 is <|image|>, past lm_head's vocabulary, so it has no logprob.
    expect(lp.map((v) => v === null)).toEqual([true, false, false, true, false, false]);
    expect(lp.every((v) => v === null || (v < 0 && Number.isFinite(v)))).toBe(true);
  });

  it('agrees within 1e-10 with an independent transcription of one cross-attention layer', () => {
    // Model surgery: no self-attention layers and the tiny model's cross-attention layer 1 at
    // index 0, so the hooked forward is finalNorm(crossLayer(embed(ids))). The transcription below
    // follows HF MllamaTextCrossAttention / MllamaCrossAttentionDecoderLayer tensor by tensor:
    // additive mask (1 - m) * min, multiplied by the full-text-row mask, softmax, gates, MLP * row mask.
    const full = model(weights);
    const get = (name: string) => full.crossAttention!.get(name.replace('layers.0.', 'layers.1.'));
    const surgery: ReferenceModel = { ...full, layers: [], crossAttention: { ...full.crossAttention!, layers: [0], get } };
    const img = image(states);
    const hooked = referenceVisionLogits(surgery, IDS, img);

    const t = full.text;
    const H = t.hiddenSize;
    const nH = t.numHeads;
    const nKv = t.numKvHeads;
    const hd = H / nH;
    const eps = t.rmsNormEps;
    const W = (n: string) => get(`language_model.model.layers.0.${n}`);
    const matvec = (w: Float32Array, x: ArrayLike<number>, rows: number) => Array.from({ length: rows }, (_, r) => {
      let s = 0;
      for (let c = 0; c < x.length; c++) s += w[r * x.length + c]! * x[c]!;
      return s;
    });
    const rms = (x: number[], w: ArrayLike<number>) => {
      const inv = 1 / Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length + eps);
      return x.map((v, i) => v * inv * w[i]!);
    };
    const headNorm = (x: number[], heads: number, w: ArrayLike<number>) => Array.from({ length: heads }, (_, h) => rms(x.slice(h * hd, (h + 1) * hd), w)).flat();
    const K = states.map((s) => headNorm(matvec(W('cross_attn.k_proj.weight'), s, nKv * hd), nKv, W('cross_attn.k_norm.weight')));
    const V = states.map((s) => matvec(W('cross_attn.v_proj.weight'), s, nKv * hd));
    const MIN = -Number.MAX_VALUE; // torch.finfo(dtype).min
    const out = IDS.map((id, row) => {
      const x = Array.from(full.embed.subarray(id * H, (id + 1) * H));
      const tiles = img.mask.tileMask[row]!;
      const rowMask = tiles.some((v) => v === 1) ? 1 : 0;
      const additive = states.map((_, j) => (1 - tiles[Math.floor(j / img.mask.tokensPerTile)]!) * MIN * rowMask);
      const q = headNorm(matvec(W('cross_attn.q_proj.weight'), rms(x, W('input_layernorm.weight')), nH * hd), nH, W('cross_attn.q_norm.weight'));
      const heads: number[] = [];
      for (let h = 0; h < nH; h++) {
        const kv = Math.floor(h / (nH / nKv));
        const logits = K.map((k, j) => q.slice(h * hd, (h + 1) * hd).reduce((s, v, d) => s + v * k[kv * hd + d]!, 0) / Math.sqrt(hd) + additive[j]!);
        const top = Math.max(...logits);
        const e = logits.map((l) => Math.exp(l - top));
        const z = e.reduce((s, v) => s + v, 0);
        for (let d = 0; d < hd; d++) heads.push(e.reduce((s, p, j) => s + (p / z) * V[j]![kv * hd + d]!, 0));
      }
      const o = matvec(W('cross_attn.o_proj.weight'), heads, H);
      const mid = x.map((v, i) => v + Math.tanh(W('cross_attn_attn_gate')[0]!) * o[i]!);
      const n = rms(mid, W('post_attention_layernorm.weight'));
      const I = t.intermediateSize;
      const g = matvec(W('mlp.gate_proj.weight'), n, I);
      const u = matvec(W('mlp.up_proj.weight'), n, I);
      const f = matvec(W('mlp.down_proj.weight'), g.map((v, i) => (v / (1 + Math.exp(-v))) * u[i]!), H);
      const y = mid.map((v, i) => v + Math.tanh(W('cross_attn_mlp_gate')[0]!) * f[i]! * rowMask);
      return matvec(full.lmHead, rms(y, full.norm), t.vocabSize);
    });
    let worst = 0;
    out.forEach((row, r) => row.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - hooked[r]![i]!)))));
    expect(worst).toBeLessThan(1e-10);
  });

  it('rejects an out-of-range token and images on a model without cross-attention layers', () => {
    const m = model(weights);
    expect(() => referenceVisionLogits(m, [128264], image(states, [128264]))).toThrow(/outside the vocabulary \[0, 128264\)/);
    const textOnly: ReferenceModel = { ...m, crossAttention: undefined };
    expect(() => referenceVisionLogits(textOnly, IDS, image(states))).toThrow(/without cross-attention layers/);
  });
});

describe('image requests', () => {
  it('the reference runner scores with the image on mllama and refuses it on a text-only model', async () => {
    const runner = await ReferenceRunner.open(ID, { offline: true, env });
    try {
      const collect = async <T>(it: AsyncIterable<T>) => {
        const out: T[] = [];
        for await (const x of it) out.push(x);
        return out;
      };
      const req = { context: 'Question: Is there a lesion?\nAnswer:', continuation: ' yes' };
      const [plain, withA, withA2, withB] = await collect(runner.loglikelihood([req, { ...req, images: [pngA] }, { ...req, images: [pngA] }, { ...req, images: [pngB] }]));
      expect(withA!.logprob).not.toBe(plain!.logprob);
      expect(withA2!.logprob).toBe(withA!.logprob);
      expect(withB!.logprob).not.toBe(withA!.logprob);
      const [gen] = await collect(runner.generate([{ context: 'Answer:', until: ['\n'], maxTokens: 2, images: [pngA] }]));
      expect(gen!.tokens).toBeGreaterThan(0);
      await expect(collect(runner.generate([{ context: 'x', until: [], maxTokens: 1, images: [pngA, pngB] }]))).rejects.toThrow(/one image per request/);
      await expect(collect(runner.generate([{ context: 'x', until: [], maxTokens: 1, images: [new Uint8Array([1, 2, 3])] }]))).rejects.toThrow(/cannot decode/);
    } finally {
      await runner.close();
    }
    const text = await ReferenceRunner.open('tiny-llama-3', { offline: true, env });
    const gen = text.generate([{ context: 'x', until: [], maxTokens: 1, images: [pngA] }]);
    await expect((async () => { for await (const _ of gen) void _; })()).rejects.toThrow(/tiny-llama-3: is text-only/);
    await text.close();
  }, 60_000);

  it('the response cache keys image requests by their images (one question, many images)', async () => {
    class Counting extends NullRunner {
      calls = 0;
      override generate(reqs: readonly GenerateRequest[]) {
        this.calls += reqs.length;
        return super.generate(reqs);
      }
    }
    const cacheDir = join(root, 'responses');
    const q = { context: 'Which side?', until: ['\n'], maxTokens: 2 };
    const drain = async (r: CachedRunner, reqs: GenerateRequest[]) => { for await (const _ of r.generate(reqs)) void _; };
    await drain(new CachedRunner(new Counting(), cacheDir, { modelHash: 'm', adapterHash: null }), [{ ...q, images: [pngA] }]);
    const inner = new Counting();
    const cached = new CachedRunner(inner, cacheDir, { modelHash: 'm', adapterHash: null });
    await drain(cached, [{ ...q, images: [pngA] }, { ...q, images: [pngB] }, q]);
    // Only the same text with the same image is a hit; another image or none at all misses.
    expect(inner.calls).toBe(2);
    expect(cached.stats).toEqual({ hits: 1, misses: 2 });
  });

  it('backends without image input refuse images with an InputError', () => {
    expect(() => rejectImages([{ images: [] }, {}], 'ort', 'm')).not.toThrow();
    expect(() => rejectImages([{}, { images: [pngA] }], 'ort', 'm')).toThrow(InputError);
    expect(() => rejectImages([{ images: [pngA] }], 'llamacpp', 'm')).toThrow(/the llamacpp backend does not take image input/);
  });
});
