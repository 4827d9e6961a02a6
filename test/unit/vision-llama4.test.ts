// LLaMA 4 image input on the float64 reference: the tiny-llama-4-vision checkpoint, the vision tower
// against an independent literal transcription of transformers' Llama4VisionModel, early fusion in
// the text forward, image requests through the reference runner, and one medical-vqa cell in-process.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../runners/arch.ts';
import { countVisionParams } from '../../harness/params/vision.ts';
import { runCell } from '../../harness/run/cell.ts';
import { planRun } from '../../harness/run/plan.ts';
import { importTasks, selectTasks } from '../../harness/run/tasks.ts';
import { zooEntry } from '../../harness/zoo.ts';
import { InputError } from '../../results/errors.ts';
import { CheckpointWeights } from '../../runners/hf/weights.ts';
import { referenceHidden } from '../../runners/reference.ts';
import { ReferenceRunner } from '../../runners/reference-runner.ts';
import { loadReferenceFromCheckpoint, type ReferenceModel } from '../../runners/reference-weights.ts';
import { readCheckpointDir } from '../../runners/hf/checkpoint.ts';
import { LlamaTokenizer } from '../../runners/tokenizer.ts';
import { ensureTinyCheckpoint } from '../../runners/tiny.ts';
import { gelu } from '../../runners/vision/math.ts';
import { encodeLlama4Image, openLlama4Reference, type Llama4Reference } from '../../runners/vision/llama4-checkpoint.ts';
import { llama4VisionTile } from '../../runners/vision/llama4-reference.ts';
import { llama4FusedHidden, llama4ImageTokens } from '../../runners/vision/llama4-text.ts';

const ID = 'tiny-llama-4-vision';
const PATCH = 519; // zoo config image_token_index = the tokenizer's <|patch|>
const root = mkdtempSync(join(tmpdir(), 'vision-llama4-'));
const env = { ...process.env, LLAMA_EVAL_CACHE: join(root, 'cache'), HF_HUB_CACHE: join(root, 'hub') };
const IMAGES = join(import.meta.dirname, '../../suites/data/medical-vqa/images');
let dir: string;
let ref: Llama4Reference;
let model: ReferenceModel;
let pngA: Uint8Array;
let pngB: Uint8Array;

beforeAll(async () => {
  dir = ensureTinyCheckpoint(ID, { env });
  ref = openLlama4Reference(dir, ID);
  model = loadReferenceFromCheckpoint(readCheckpointDir(dir, ID, 'tiny'));
  pngA = new Uint8Array(readFileSync(join(IMAGES, 'lesion-left.png')));
  pngB = new Uint8Array(readFileSync(join(IMAGES, 'no-lesion.png')));
}, 60_000);
afterAll(() => {
  ref?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('tiny-llama-4-vision checkpoint', () => {
  it('stores HF Llama4ForConditionalGeneration names, and as many vision parameters as params counts', () => {
    const weights = CheckpointWeights.open(dir);
    try {
      const names = weights.names();
      expect(weights.info('vision_model.patch_embedding.linear.weight').shape).toEqual([16, 3 * 7 * 7]);
      expect(weights.info('vision_model.positional_embedding_vlm').shape).toEqual([17, 16]);
      expect(weights.info('vision_model.vision_adapter.mlp.fc1.weight').shape).toEqual([32, 64]);
      expect(weights.info('multi_modal_projector.linear_1.weight').shape).toEqual([64, 32]);
      expect(weights.info('language_model.model.embed_tokens.weight').shape).toEqual([520, 64]);
      expect(names).toContain('language_model.lm_head.weight');
      expect(names.some((n) => n.startsWith('model.'))).toBe(false);
      // harness/params/vision.ts counts modules from modeling_llama4.py (and is pinned to the published
      // Scout/Maverick safetensors totals in test/golden/zoo-multimodal.test.ts); the generated file
      // must hold exactly that many vision + projector values.
      const size = (n: string) => weights.info(n).shape.reduce((a, b) => a * b, 1);
      const vision = names.filter((n) => n.startsWith('vision_model.') || n.startsWith('multi_modal_projector.')).reduce((s, n) => s + size(n), 0);
      expect(vision).toBe(countVisionParams('llama4', zooEntry(ID)!.config as Record<string, unknown>).total);
    } finally {
      weights.close();
    }
  });

  it('shares tiny-llama-4\'s text architecture, plus 8 image special tokens in the vocabulary', () => {
    const text = parseModelConfig(zooEntry('tiny-llama-4')!.config, 'zoo').text;
    const fused = parseModelConfig(zooEntry(ID)!.config, 'zoo').text;
    expect({ ...fused, vocabSize: fused.vocabSize - 8 }).toEqual(text);
    const tokenizer = LlamaTokenizer.fromDir(dir);
    const tokens = llama4ImageTokens((t) => tokenizer.encode(t, { addSpecialTokens: false }), zooEntry(ID)!.config as Record<string, unknown>, ID);
    expect(tokens).toEqual({ imageStart: 512, imageEnd: 513, tileX: 516, tileY: 517, image: 518, patch: PATCH });
    // The text vocabulary below the image tokens is tiny-llama-4's synthetic one.
    const plain = LlamaTokenizer.fromDir(ensureTinyCheckpoint('tiny-llama-4', { env }));
    expect(tokenizer.encode('Is there a lesion?')).toEqual(plain.encode('Is there a lesion?'));
  });

  it('refuses a tokenizer without <|patch|> or a config whose image_token_index is not it', () => {
    const config = zooEntry(ID)!.config as Record<string, unknown>;
    expect(() => llama4ImageTokens((t) => [...t].map((c) => c.charCodeAt(0)), config, ID)).toThrow(/tiny-llama-4-vision: the tokenizer has no single token <\|image_start\|>/);
    const tokenizer = LlamaTokenizer.fromDir(dir);
    expect(() => llama4ImageTokens((t) => tokenizer.encode(t, { addSpecialTokens: false }), { ...config, image_token_index: 7 }, ID)).toThrow(/image_token_index 7 is not the tokenizer's <\|patch\|> id 519/);
  });
});

// --- An independent transcription of transformers' Llama4VisionModel.forward + Llama4VisionPixelShuffleMLP
// for one tile, written with explicit complex numbers and the tensor ops spelled as HF spells them
// (nn.Unfold, torch.cat, freqs built by repeat_interleave / cat / [..., ::2] / masked_fill).
type Mat = number[][];
const matT = (x: Mat, w: Float32Array, out: number, bias?: Float32Array): Mat =>
  x.map((row) => Array.from({ length: out }, (_, o) => row.reduce((s, v, i) => s + v * w[o * row.length + i]!, bias ? bias[o]! : 0)));
const ln = (x: Mat, w: Float32Array, b: Float32Array): Mat =>
  x.map((row) => {
    const mean = row.reduce((a, v) => a + v, 0) / row.length;
    const variance = row.reduce((a, v) => a + (v - mean) ** 2, 0) / row.length;
    return row.map((v, i) => ((v - mean) / Math.sqrt(variance + 1e-5)) * w[i]! + b[i]!);
  });

function transcribedTile(pixels: Float64Array, get: (n: string) => Float32Array): Mat {
  const [C, S, k, h, heads] = [3, 28, 7, 16, 2];
  const idx = S / k;
  const hd = h / heads;
  // nn.Unfold(kernel=stride=k): column index c*k*k + ky*k + kx, blocks row-major; then .permute(0, 2, 1).
  const unfolded: Mat = [];
  for (let by = 0; by < idx; by++) for (let bx = 0; bx < idx; bx++) {
    const col: number[] = [];
    for (let c = 0; c < C; c++) for (let ky = 0; ky < k; ky++) for (let kx = 0; kx < k; kx++) col.push(pixels[c * S * S + (by * k + ky) * S + bx * k + kx]!);
    unfolded.push(col);
  }
  let x = matT(unfolded, get('vision_model.patch_embedding.linear.weight'), h);
  x.push([...get('vision_model.class_embedding')]); // torch.cat([hidden_state, class_embedding], dim=1)
  const pos = get('vision_model.positional_embedding_vlm');
  x = ln(x.map((row, i) => row.map((v, d) => v + pos[i * h + d]!)), get('vision_model.layernorm_pre.weight'), get('vision_model.layernorm_pre.bias'));
  // Llama4VisionRotaryEmbedding, literally.
  const imgIdx = [...Array.from({ length: idx * idx }, (_, i) => i), -2];
  const freqDim = hd / 2;
  const ropeFreq = Array.from({ length: freqDim / 2 }, (_, j) => 1 / 10000 ** ((2 * j) / freqDim));
  const freqs = imgIdx.map((id) => {
    const fx = (((id % idx) + idx) % idx) + 1; // Python %
    const fy = Math.floor(id / idx) + 1; // Python //
    const rx = ropeFreq.flatMap((f) => [fx * f, fx * f]); // repeat_interleave(2)
    const ry = ropeFreq.flatMap((f) => [fy * f, fy * f]);
    const all = [...rx, ...ry].filter((_, j) => j % 2 === 0); // cat then [..., ::2]
    return all.map((a) => (id < 0 ? 0 : a)); // masked_fill(img_idx < 0, 0)
  });
  const rot = (v: number[], t: number): number[] => {
    const out = [...v];
    for (let head = 0; head < heads; head++) for (let p = 0; p < hd / 2; p++) {
      const [re, im] = [v[head * hd + 2 * p]!, v[head * hd + 2 * p + 1]!];
      const [cr, ci] = [Math.cos(freqs[t]![p]!), Math.sin(freqs[t]![p]!)];
      out[head * hd + 2 * p] = re * cr - im * ci; // (re + i im)(cr + i ci)
      out[head * hd + 2 * p + 1] = re * ci + im * cr;
    }
    return out;
  };
  for (let l = 0; l < 2; l++) {
    const p = `vision_model.model.layers.${l}`;
    const n = ln(x, get(`${p}.input_layernorm.weight`), get(`${p}.input_layernorm.bias`));
    const q = matT(n, get(`${p}.self_attn.q_proj.weight`), h, get(`${p}.self_attn.q_proj.bias`)).map(rot);
    const kk = matT(n, get(`${p}.self_attn.k_proj.weight`), h, get(`${p}.self_attn.k_proj.bias`)).map(rot);
    const v = matT(n, get(`${p}.self_attn.v_proj.weight`), h, get(`${p}.self_attn.v_proj.bias`));
    const heads2: Mat = q.map((qi) => {
      const out = new Array<number>(h).fill(0);
      for (let head = 0; head < heads; head++) {
        const sl = (r: number[]) => r.slice(head * hd, (head + 1) * hd);
        const scores = kk.map((kj) => sl(qi).reduce((s, a, d) => s + a * sl(kj)[d]!, 0) * hd ** -0.5);
        const mx = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - mx));
        const z = e.reduce((a, b) => a + b, 0);
        v.forEach((vj, j) => sl(vj).forEach((val, d) => (out[head * hd + d]! += (e[j]! / z) * val)));
      }
      return out;
    });
    const attn = matT(heads2, get(`${p}.self_attn.o_proj.weight`), h, get(`${p}.self_attn.o_proj.bias`));
    x = x.map((row, i) => row.map((val, d) => val + attn[i]![d]!));
    const n2 = ln(x, get(`${p}.post_attention_layernorm.weight`), get(`${p}.post_attention_layernorm.bias`));
    const f = matT(matT(n2, get(`${p}.mlp.fc1.weight`), 64, get(`${p}.mlp.fc1.bias`)).map((r) => r.map(gelu)), get(`${p}.mlp.fc2.weight`), h, get(`${p}.mlp.fc2.bias`));
    x = x.map((row, i) => row.map((val, d) => val + f[i]![d]!));
  }
  x = ln(x, get('vision_model.layernorm_post.weight'), get('vision_model.layernorm_post.bias')).slice(0, -1);
  // pixel_shuffle(x, 0.5) on the 4x4 grid: view (4, 2, 32) -> permute (2, 4, 32) -> view (2, 2, 64) -> permute -> (4, 64).
  const a = Array.from({ length: 2 }, (_, j) => Array.from({ length: 4 }, (_, i) => [...x[i * 4 + 2 * j]!, ...x[i * 4 + 2 * j + 1]!]));
  const b = a.map((rows) => Array.from({ length: 2 }, (_, ii) => [...rows[2 * ii]!, ...rows[2 * ii + 1]!]));
  const shuffled = Array.from({ length: 4 }, (_, t) => b[t % 2]![Math.floor(t / 2)]!);
  const fc1 = matT(shuffled, get('vision_model.vision_adapter.mlp.fc1.weight'), 32).map((r) => r.map(gelu));
  return matT(fc1, get('vision_model.vision_adapter.mlp.fc2.weight'), 32).map((r) => r.map(gelu));
}

describe('Llama 4 vision tower', () => {
  it('agrees within 1e-10 with an independent transcription of Llama4VisionModel (weights x8 for sharp attention)', async () => {
    const encoded = await encodeLlama4Image(ref, pngA, 'a.png');
    // 64x64 with 28-px tiles and max_patches 4: the 2x2 canvas (56 px) + the global tile.
    expect(encoded.image.aspectRatio).toEqual([2, 2]);
    expect(encoded.features).toHaveLength(5 * 4);
    const sharpGet = (n: string) => (n.includes('norm') ? ref.get(n) : ref.get(n).map((v) => v * 8));
    for (const t of [0, 4]) {
      const pixels = encoded.image.pixelValues.subarray(t * 3 * 28 * 28, (t + 1) * 3 * 28 * 28);
      const ours = llama4VisionTile(pixels, 0, sharpGet, ref.vision);
      const theirs = transcribedTile(Float64Array.from(pixels), sharpGet);
      ours.forEach((row, i) => row.forEach((v, d) => expect(Math.abs(v - theirs[i]![d]!)).toBeLessThan(1e-10)));
    }
  });
});

describe('early fusion in the text forward', () => {
  const ids = [1, 300, 512, PATCH, PATCH, 518, PATCH, PATCH, 513, 301, 302];
  it('with the <|patch|> embedding as the feature equals the plain text forward', () => {
    const row = Float64Array.from(model.embed.subarray(PATCH * 64, (PATCH + 1) * 64));
    const fused = llama4FusedHidden(model, ids, PATCH, [row, row, row, row]);
    const plain = referenceHidden(model, ids);
    fused.forEach((x, i) => expect([...x]).toEqual([...plain[i]!]));
  });

  it('with image features changes every position from the first <|patch|> on, none before', async () => {
    const features = (await encodeLlama4Image(ref, pngB, 'b.png')).features.slice(0, 4);
    const fused = llama4FusedHidden(model, ids, PATCH, features);
    const plain = referenceHidden(model, ids);
    fused.forEach((x, i) => (i < 3 ? expect([...x]).toEqual([...plain[i]!]) : expect(Math.max(...x.map((v, d) => Math.abs(v - plain[i]![d]!)))).toBeGreaterThan(1e-6)));
    expect(() => llama4FusedHidden(model, ids, PATCH, features.slice(1))).toThrow(/4 <\|patch\|> tokens in the sequence, 3 features/);
  });
});

const collect = async <T>(items: AsyncIterable<T>): Promise<T[]> => {
  const out: T[] = [];
  for await (const x of items) out.push(x);
  return out;
};

describe('LLaMA 4 image requests', () => {
  it('the reference runner scores with the image, caches it by content, and generates', async () => {
    const runner = await ReferenceRunner.open(ID, { offline: true, env });
    try {
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
  }, 30_000);

  it('a text-only Llama 4 checkpoint refuses an image with an InputError naming the model', async () => {
    const text = await ReferenceRunner.open('tiny-llama-4', { offline: true, env });
    try {
      const attempt = collect(text.loglikelihood([{ context: 'x', continuation: ' y', images: [pngA] }]));
      await expect(attempt).rejects.toThrow(InputError);
      await expect(collect(text.loglikelihood([{ context: 'x', continuation: ' y', images: [pngA] }]))).rejects.toThrow(/model tiny-llama-4: is a text-only Llama 4 checkpoint/);
    } finally {
      await text.close();
    }
    expect(() => openLlama4Reference(ensureTinyCheckpoint('tiny-llama-4', { env }), 'tiny-llama-4')).toThrow(/model tiny-llama-4: is a text-only/);
  });

  it('runs a medical-vqa cell on the reference backend, in-process (a cell of llama-eval run --suite medical-vqa)', async () => {
    // One closed question: each answer is up to 16 generated tokens, a full forward each without a
    // KV cache, so more documents only cost time; the open-question cell takes the same path.
    const tasks = selectTasks(await importTasks(), [], ['medical-vqa-closed']);
    const plan = planRun({ models: [ID], pefts: [], tasks, backend: 'reference', protocol: null, limit: 1, seed: 1234, dataPath: null });
    expect(plan.cells).toHaveLength(1);
    const recordsPath = join(root, 'records.jsonl');
    const outcome = await runCell(plan.cells[0]!, { recordsPath, runId: 'llama4-vision', offline: true, env });
    expect(outcome.status).toBe('ok');
    if (outcome.status === 'ok') expect(outcome.metrics.closed_acc?.n).toBe(1);
    const samples = readFileSync(recordsPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string }).filter((r) => r.kind === 'sample');
    expect(samples).toHaveLength(1);
  }, 30_000);
});
