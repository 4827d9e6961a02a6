// --peft on LLaMA 3.2 Vision (mllama) on the reference forward, with an image: LoRA / QLoRA / LLaMA-Adapter
// V1 / V2 on the text model. HF module tree (transformers 4.45 modeling_mllama.py): the text model of
// MllamaForConditionalGeneration is `language_model` (MllamaForCausalLM), so a PEFT adapter saves
// `base_model.model.language_model.model.layers.N.self_attn.q_proj.lora_A.weight`, and cross-attention
// decoder layers hold `cross_attn.{q,k,v,o}_proj` instead of `self_attn`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePeft, parsePeftSpec, type AdapterV2Spec, type LoraSpec } from '../../harness/peft/index.ts';
import { InputError } from '../../results/errors.ts';
import { readCheckpointDir } from '../../runners/hf/checkpoint.ts';
import { applyPeftToReference, writeLoraAdapter } from '../../runners/peft/index.ts';
import { randomLoraTensors } from '../../runners/peft/lora-write.ts';
import { applyAdapterV2, officialAdapterV2Name, randomAdapterV2Tensors } from '../../runners/peft/adapter-v2.ts';
import { memoryAdapterTensors } from '../../runners/peft/lora.ts';
import { forwardVisual, withVisualQuery } from '../../runners/peft/visual.ts';
import type { LlamaTokenizer } from '../../runners/tokenizer.ts';
import { gelu } from '../../runners/vision/math.ts';
import { pickleDict, tensor, writePthFile } from './torch-pickle.ts';
import { quantizeReferenceNf4 } from '../../runners/quant/nf4-model.ts';
import { encodePair, ReferenceRunner } from '../../runners/reference-runner.ts';
import { loadReferenceFromCheckpoint, type ReferenceModel } from '../../runners/reference-weights.ts';
import { referenceHidden, type CrossAttentionStates } from '../../runners/reference.ts';
import { ensureTinyCheckpoint } from '../../runners/tiny.ts';
import { encodeImage, openMllamaReference } from '../../runners/vision/mllama-checkpoint.ts';
import { crossAttentionTileMask } from '../../runners/vision/mllama-text.ts';
import { linear, logSoftmax } from '../../runners/reference-ops.ts';

const ID = 'tiny-llama-3.2-vision';
const IMAGE_TOKEN = 128256; // zoo config image_token_index
const tmp = mkdtempSync(join(tmpdir(), 'peft-mllama-'));
// The shared tiny-model cache (generated once, then reused by every test that asks for it).
const env = process.env;
const dir = ensureTinyCheckpoint(ID, { env });
const base: ReferenceModel = loadReferenceFromCheckpoint(readCheckpointDir(dir, ID, 'tiny'));
// <|image|> mid-sequence, so rows before it see no tile and rows after it see the 2 real tiles.
const IDS = [128000, 791, IMAGE_TOKEN, 6460, 374, 264];
let image: CrossAttentionStates;
let png: Uint8Array;

beforeAll(async () => {
  // 24 x 16 RGB: two 16-px tiles after the processor's canvas fit (as in vision-text.test.ts).
  const raw = new Uint8Array(24 * 16 * 3).map((_, i) => (i * 37) % 256);
  png = new Uint8Array(await sharp(raw, { raw: { width: 24, height: 16, channels: 3 } }).png().toBuffer());
  const ref = openMllamaReference(dir);
  try {
    const { states } = await encodeImage(ref, png, 'a.png');
    image = { states, mask: { tokensPerTile: states.length / 4, tileMask: crossAttentionTileMask(IDS, IMAGE_TOKEN, 2, 4) } };
  } finally {
    ref.close();
  }
}, 60_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// The final hidden states with the image: lm_head (128K rows, never adapted here) would only cost time,
// so equal states are equal logprobs.
const hidden = (m: ReferenceModel, ids: readonly number[] = IDS, img: CrossAttentionStates | undefined = image) => referenceHidden(m, ids, img).flatMap((row) => [...row]);
const maxDiff = (a: number[], b: number[]) => Math.max(...a.map((x, i) => Math.abs(x - b[i]!)));

describe('--peft on mllama (reference, with an image)', () => {
  it('zero-init adapters (LoRA B = 0, zero gates, V2 identity) leave the outputs exactly equal to the base model', () => {
    const plain = hidden(base);
    for (const spec of ['lora:targets=all-linear', 'adapter-v1:layers=2,len=3', 'adapter-v2:layers=1,len=2']) {
      expect(hidden(applyPeftToReference(base, spec, { init: 'zero' })), spec).toEqual(plain);
    }
    // QLoRA's base is NF4 (every Linear but lm_head, cross-attention layers included): B = 0 leaves that base.
    expect(hidden(applyPeftToReference(base, 'qlora:r=4', { init: 'zero' }))).toEqual(hidden(quantizeReferenceNf4(base)));
  });

  it('random LoRA / QLoRA on every Linear (self- and cross-attention layers): unmerged equals merged within 1e-10 and moves the base', () => {
    for (const spec of ['lora:r=4,alpha=8,targets=all-linear', 'qlora:r=4']) {
      const merged = hidden(applyPeftToReference(base, spec, { mode: 'merged', seed: 3 }));
      const unmerged = hidden(applyPeftToReference(base, spec, { mode: 'unmerged', seed: 3 }));
      expect(maxDiff(merged, unmerged), spec).toBeLessThan(1e-10);
      expect(maxDiff(unmerged, hidden(base)), spec).toBeGreaterThan(1e-4);
    }
  });

  it('LoRA on cross_attn only: the text-only forward (cross-attention layers skipped) is the base, the image forward is not', () => {
    const adapted = applyPeftToReference(base, 'lora:r=4,targets=cross_attn.q_proj+cross_attn.v_proj', { seed: 5 });
    const text = IDS.filter((id) => id !== IMAGE_TOKEN);
    expect(referenceHidden(adapted, text)).toEqual(referenceHidden(base, text));
    expect(maxDiff(hidden(adapted), hidden(base))).toBeGreaterThan(1e-4);
  });

  it('adapter keys are the MllamaForConditionalGeneration ones, and a saved adapter directory reads back', () => {
    const spec = parsePeftSpec('lora:r=2,alpha=4,targets=q_proj') as LoraSpec;
    const names = randomLoraTensors(spec, base.text, 1).map((t) => t.name);
    // q_proj matches self_attn.q_proj (layers 0, 2) and cross_attn.q_proj (layer 1), as PEFT's suffix match does.
    expect(names.filter((n) => n.endsWith('lora_A.weight'))).toEqual([
      'base_model.model.language_model.model.layers.0.self_attn.q_proj.lora_A.weight',
      'base_model.model.language_model.model.layers.2.self_attn.q_proj.lora_A.weight',
      'base_model.model.language_model.model.layers.1.cross_attn.q_proj.lora_A.weight',
    ]);
    const adapter = join(tmp, 'lora');
    writeLoraAdapter(adapter, spec, base.text, 9);
    expect(hidden(applyPeftToReference(base, adapter))).toEqual(hidden(applyPeftToReference(base, 'lora:r=2,alpha=4,targets=q_proj', { seed: 9 })));
  });

  it('LLaMA-Adapter V1 / V2 prompts go to the top self-attention layers (cross-attention layers have no self_attn)', () => {
    // layers=2 on a 3-layer model with cross-attention layer 1: the self-attention layers 0 and 2.
    const v1 = applyPeftToReference(base, 'adapter-v1:layers=2,len=3', { seed: 2 });
    expect([...v1.peft!.adaptionPrompts.keys()]).toEqual([0, 2]);
    expect(maxDiff(hidden(v1), hidden(base))).toBeGreaterThan(1e-4);
    const v2 = applyPeftToReference(base, 'adapter-v2:layers=1,len=2', { seed: 2 });
    expect([...v2.peft!.adaptionPrompts.keys()]).toEqual([2]);
    // V2 tunes the self-attention layers' Linears only (7 each), none of cross-attention layer 1's.
    expect([...v2.peft!.extraBias.keys()].filter((k) => k.startsWith('model.layers.1.'))).toEqual([]);
    expect(v2.peft!.extraBias.size).toBe(14);
    const merged = hidden(applyPeftToReference(base, 'adapter-v2:layers=1,len=2', { seed: 2, mode: 'merged' }));
    expect(maxDiff(merged, hidden(v2))).toBeLessThan(1e-9);
  });

  it('rejects adapters that do not fit, naming the problem', () => {
    expect(() => applyPeftToReference(base, 'adapter-v1:layers=3,len=2')).toThrow(/more than the model's 2 self-attention layers/);
    expect(() => applyPeftToReference(base, 'adapter-v1:layers=3,len=2')).toThrow(InputError);
    // An adapter saved on a text-only LLaMA (keys base_model.model.model.layers...) is not an mllama adapter.
    const textAdapter = join(tmp, 'text-lora');
    writeLoraAdapter(textAdapter, parsePeftSpec('lora:r=2,targets=q_proj') as LoraSpec, { ...base.text, crossAttentionLayers: [] }, 1);
    expect(() => applyPeftToReference(base, textAdapter)).toThrow(/missing adapter tensor "base_model\.model\.language_model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight"/);
  });
});

// LLaMA-Adapter V2's visual path (llama_adapter_v2_multimodal7b/llama/llama_adapter.py forward_visual),
// with mllama's projector output over the image's real tiles standing in for CLIP's features.
describe('LLaMA-Adapter V2 visual path on mllama', () => {
  const SPEC = 'adapter-v2:layers=1,len=2,visual_dim=4,visual_depth=1,visual_heads=2';
  const spec = parsePeftSpec(SPEC) as AdapterV2Spec;
  const { visual: _visual, ...textSpec } = spec;
  const tensors = randomAdapterV2Tensors(spec, base, 4);
  const isVisual = (name: string) => /^(clip_proj|visual_)/.test(name);
  const textOnly = (query: Float32Array) =>
    applyAdapterV2(base, textSpec, memoryAdapterTensors('text', tensors.filter((t) => !isVisual(t.name)).map((t) => (t.name === 'adapter_query.weight' ? { ...t, data: query } : t))), 'unmerged');
  const adapterQuery = tensors.find((t) => t.name === 'adapter_query.weight')!.data;
  // 2 real tiles of 5 tokens (4 patches + class token) each: the first 10 projected rows.
  const features = () => image.states.slice(0, 2 * (image.states.length / 4));

  it('zero visual weights give exactly the text-only Adapter V2 (the visual query is 0)', () => {
    const zeroed = tensors.map((t) => (isVisual(t.name) ? { ...t, data: new Float32Array(t.data.length) } : t));
    const model = withVisualQuery(applyAdapterV2(base, spec, memoryAdapterTensors('zero', zeroed), 'unmerged'), features());
    expect(hidden(model)).toEqual(hidden(textOnly(adapterQuery)));
  });

  it('a random visual path equals a hand computation of forward_visual within 1e-10, and changes the output', () => {
    const w = new Map(tensors.map((t) => [t.name, t.data]));
    const model = applyAdapterV2(base, spec, memoryAdapterTensors('random', tensors), 'unmerged');
    const hand = handVisualQuery(w, features(), { dim: 4, heads: 2, mlp: 16, len: 2, hidden: base.text.hiddenSize });
    const got = forwardVisual(model.peft!.visual!, features(), base.text.hiddenSize);
    expect(maxDiff(got.flatMap((r) => [...r]), hand.flat())).toBeLessThan(1e-10);
    // forward: the prompt of the adapted layer is adapter_query + visual query (float32, as the prompts are stored).
    const summed = Float32Array.from(adapterQuery, (x, i) => x + hand[Math.floor(i / base.text.hiddenSize)]![i % base.text.hiddenSize]!);
    const withImage = hidden(withVisualQuery(model, features()));
    expect(maxDiff(withImage, hidden(textOnly(summed)))).toBeLessThan(1e-10);
    expect(maxDiff(withImage, hidden(textOnly(adapterQuery)))).toBeGreaterThan(1e-4);
  });

  it('an official release .pth with the visual path runs through --peft file.pth:layers=N on the reference runner', async () => {
    // Official names (llama_adapter_v2_multimodal7b/util/extract_adapter_from_checkpoint.py keys; the
    // release's 16 visual heads, which the file does not store): bias-only text path, like its BIAS model.
    const v2 = parsePeftSpec('adapter-v2:layers=1,len=2,scale=false,norm=false,visual_dim=16,visual_depth=1,visual_heads=16') as AdapterV2Spec;
    const ours = randomAdapterV2Tensors(v2, base, 6);
    const officialOf = new Map<string, string>();
    for (let i = 0; i < 3; i++) {
      for (const m of ['attention.wq', 'attention.wk', 'attention.wv', 'attention.wo', 'feed_forward.w1', 'feed_forward.w2', 'feed_forward.w3']) officialOf.set(officialAdapterV2Name(`layers.${i}.${m}_bias`)!, `layers.${i}.${m}_bias`);
      officialOf.set(officialAdapterV2Name(`layers.${i}.attention.gate`)!, `layers.${i}.attention.gate`);
    }
    const storages: Record<string, Uint8Array> = {};
    const entries: [string, number[]][] = ours.map((t, k) => {
      storages[String(k)] = new Uint8Array(t.data.slice().buffer);
      const strides = t.shape.map((_, d) => t.shape.slice(d + 1).reduce((a, b) => a * b, 1));
      return [officialOf.get(t.name) ?? t.name, tensor('FloatStorage', String(k), t.data.length, 0, t.shape, strides)];
    });
    // The release keeps a gate on every layer; cross-attention layer 1's is unused.
    storages.g1 = new Uint8Array(new Float32Array(base.text.numHeads).buffer);
    entries.push(['layers.1.attention.gate', tensor('FloatStorage', 'g1', base.text.numHeads, 0, [1, base.text.numHeads, 1, 1], [base.text.numHeads, 1, 1, 1])]);
    const pth = writePthFile(join(tmp, 'v2-visual.pth'), pickleDict(entries), storages);
    const arg = `${pth}:layers=1`;
    expect(parsePeft(arg)).toMatchObject({ method: 'adapter-v2', layers: 1, len: 2, bias: true, scale: false, norm: false, visual: { dim: 16, depth: 1, heads: 16, mlpHidden: 64 } });
    const adapted = applyPeftToReference(base, arg);
    const direct = applyAdapterV2(base, v2, memoryAdapterTensors('ours', ours), 'unmerged');
    expect(hidden(withVisualQuery(adapted, features()))).toEqual(hidden(withVisualQuery(direct, features())));

    const runner = await ReferenceRunner.open(ID, { offline: true, env, peft: arg });
    try {
      const req = { context: 'Answer:', continuation: ' yes', images: [png] };
      let logprob = NaN;
      for await (const x of runner.loglikelihood([req])) logprob = x.logprob;
      // The runner's request: <|image|> + context + continuation (lm-eval _encode_pair), this image's visual query in the prompts.
      // The runner's own tokenizer (loading the 128K vocabulary again costs seconds).
      const tokenizer = (runner as unknown as { tokenizer: LlamaTokenizer }).tokenizer;
      const pair = encodePair((t) => tokenizer.encode(t, { addSpecialTokens: false }), req.context, req.continuation);
      const ids = [IMAGE_TOKEN, ...pair.context, ...pair.continuation];
      const img = { states: image.states, mask: { tokensPerTile: image.states.length / 4, tileMask: crossAttentionTileMask(ids, IMAGE_TOKEN, 2, 4) } };
      // Sum of log p(continuation token | before), lm_head only at the rows that predict them.
      const score = (m: ReferenceModel) => {
        const h = referenceHidden(m, ids, img);
        return pair.continuation.reduce((acc, id, k) => {
          const row = ids.length - pair.continuation.length + k - 1;
          return acc + logSoftmax(linear(m.lmHead, h[row]!, m.text.vocabSize, m.text.hiddenSize))[id]!;
        }, 0);
      };
      expect(Math.abs(logprob - score(withVisualQuery(direct, features())))).toBeLessThan(1e-10);
      expect(Math.abs(logprob - score(direct))).toBeGreaterThan(1e-6);
    } finally {
      await runner.close();
    }
  }, 60_000);

  it('refuses a visual path on a model without a vision tower, and bad visual sizes', () => {
    const textModel = { ...base, crossAttention: undefined, arch: { ...base.arch, modelType: 'llama' as const } };
    expect(() => applyPeftToReference(textModel, SPEC)).toThrow(/visual path reads the base's image features, but this model has no vision tower/);
    expect(() => parsePeftSpec('adapter-v2:visual_dim=6,visual_heads=4')).toThrow(/visual_dim 6 must be divisible by visual_heads 4/);
    expect(() => parsePeftSpec('adapter-v2:visual=false,visual_dim=8')).toThrow(/need visual=true/);
  });
});

/**
 * forward_visual written out independently of runners/peft/visual.ts, from the official code and
 * timm 0.3.2's Block/Attention/Mlp: LayerNorm eps 1e-5 (nn.LayerNorm default), qkv reshaped to
 * (3, heads, head_dim), softmax(q k^T * head_dim^-0.5), exact-erf GELU.
 */
function handVisualQuery(w: Map<string, Float32Array>, feats: readonly Float64Array[], d: { dim: number; heads: number; mlp: number; len: number; hidden: number }): number[][] {
  const W = (n: string) => w.get(n)!;
  const lin = (name: string, x: ArrayLike<number>, out: number): number[] => {
    const weight = W(`${name}.weight`);
    const bias = W(`${name}.bias`);
    const inp = x.length;
    const y: number[] = [];
    for (let o = 0; o < out; o++) {
      let acc = bias[o]!;
      for (let i = 0; i < inp; i++) acc += weight[o * inp + i]! * x[i]!;
      y.push(acc);
    }
    return y;
  };
  const ln = (name: string, x: number[]): number[] => {
    const mean = x.reduce((a, b) => a + b, 0) / x.length;
    const variance = x.reduce((a, b) => a + (b - mean) ** 2, 0) / x.length;
    return x.map((v, i) => ((v - mean) / Math.sqrt(variance + 1e-5)) * W(`${name}.weight`)[i]! + W(`${name}.bias`)[i]!);
  };
  const clip = feats.map((f) => ln('clip_proj_norm', lin('clip_proj', f, d.dim)));
  const query = W('visual_query.weight');
  let x: number[][] = [...Array.from({ length: d.len }, (_, i) => [...query.subarray(i * d.dim, (i + 1) * d.dim)]), ...clip];
  const hd = d.dim / d.heads;
  const p = 'visual_blocks.0';
  const qkv = x.map((row) => lin(`${p}.attn.qkv`, ln(`${p}.norm1`, row), 3 * d.dim));
  // (N, 3, heads, hd): part s, head h, channel c at s*dim + h*hd + c.
  const part = (row: number[], s: number, h: number) => row.slice(s * d.dim + h * hd, s * d.dim + (h + 1) * hd);
  x = x.map((row, n) => {
    const heads: number[] = [];
    for (let h = 0; h < d.heads; h++) {
      const q = part(qkv[n]!, 0, h);
      const logits = qkv.map((other) => part(other, 1, h).reduce((a, k, c) => a + k * q[c]!, 0) * hd ** -0.5);
      const top = Math.max(...logits);
      const e = logits.map((l) => Math.exp(l - top));
      const z = e.reduce((a, b) => a + b, 0);
      for (let c = 0; c < hd; c++) heads.push(qkv.reduce((a, other, m) => a + (e[m]! / z) * part(other, 2, h)[c]!, 0));
    }
    return lin(`${p}.attn.proj`, heads, d.dim).map((v, c) => row[c]! + v);
  });
  x = x.map((row) => lin(`${p}.mlp.fc2`, lin(`${p}.mlp.fc1`, ln(`${p}.norm2`, row), d.mlp).map(gelu), d.dim).map((v, c) => row[c]! + v));
  return x.slice(0, d.len).map((row) => ln('visual_proj_norm', lin('visual_proj', row, d.hidden)));
}
