// The float64 vision reference against a second, independently written implementation that follows
// transformers' MllamaVisionModel.forward literally: the whole padded sequence as one matrix, the
// additive 4D mask of `_prepare_aspect_ratio_attention_mask` (outer product of the inverted
// per-token mask times a large negative number), the convolution as a 2D sliding sum, embeddings
// indexed through the reshapes HF uses. Erf/LayerNorm come from math.ts (checked against tables in
// vision-mllama.test.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTinyCheckpoint } from '../../runners/tiny.ts';
import { gelu, layerNorm } from '../../runners/vision/math.ts';
import { openMllamaReference, type MllamaReference } from '../../runners/vision/mllama-checkpoint.ts';
import { mllamaVisionForward, type MllamaVisionArch, type TensorGetter } from '../../runners/vision/mllama-reference.ts';

const NEG = -1e300; // stands for torch.finfo(dtype).min

function matVec(w: Float32Array, x: ArrayLike<number>, out: number, inp: number, b?: Float32Array): number[] {
  return Array.from({ length: out }, (_, o) => {
    let s = b ? b[o]! : 0;
    for (let i = 0; i < inp; i++) s += w[o * inp + i]! * x[i]!;
    return s;
  });
}

function dense(pixels: Float64Array, ratioId: number, arMask: number[], get: TensorGetter, a: MllamaVisionArch): number[][] {
  const { hiddenSize: h, maxNumTiles: T, patchSize: ps, imageSize: S, numChannels: C } = a;
  const side = S / ps;
  const P = side * side + 1;
  const L = Math.ceil(P / 8) * 8;
  const tanh = (n: string) => Math.tanh(get(n)[0]!);
  const W = get('vision_model.patch_embedding.weight'); // [h, C, ps, ps]
  const pre = get('vision_model.pre_tile_positional_embedding.embedding.weight');
  const post = get('vision_model.post_tile_positional_embedding.embedding.weight');
  const pos = get('vision_model.gated_positional_embedding.embedding');
  const tilePos = get('vision_model.gated_positional_embedding.tile_embedding.weight');
  const g = tanh('vision_model.gated_positional_embedding.gate');
  let X: number[][] = [];
  for (let t = 0; t < T; t++) {
    for (let n = 0; n < L; n++) {
      if (n >= P) {
        X.push(new Array(h).fill(0));
        continue;
      }
      const tok = new Array(h).fill(0);
      for (let d = 0; d < h; d++) {
        if (n === 0) tok[d] = get('vision_model.class_embedding')[d]!;
        else {
          const py = Math.floor((n - 1) / side);
          const px = (n - 1) % side;
          let s = 0;
          for (let c = 0; c < C; c++) for (let ky = 0; ky < ps; ky++) for (let kx = 0; kx < ps; kx++) {
            s += W[((d * C + c) * ps + ky) * ps + kx]! * pixels[((t * C + c) * S + py * ps + ky) * S + px * ps + kx]!;
          }
          // embedding(ids).reshape(-1, max_num_tiles, 1, hidden) * tanh(gate)
          tok[d] = s + tanh('vision_model.pre_tile_positional_embedding.gate') * pre[(ratioId * T + t) * h + d]!;
        }
        tok[d] += (1 - g) * pos[n * h + d]! + g * tilePos[((ratioId * T + t) * P + n) * h + d]!;
      }
      X.push([...layerNorm(tok, get('vision_model.layernorm_pre.weight'), get('vision_model.layernorm_pre.bias'), 1e-5)]);
    }
  }
  const inv = X.map((_, i) => (arMask[Math.floor(i / L)] === 1 && i % L < P ? 0 : 1));
  const layer = (x: number[][], p: string, gated: boolean): number[][] => {
    const hd = h / a.heads;
    const ln1 = x.map((r) => layerNorm(r, get(`${p}.input_layernorm.weight`), get(`${p}.input_layernorm.bias`), a.normEps));
    const [q, k, v] = ['q', 'k', 'v'].map((m) => ln1.map((r) => matVec(get(`${p}.self_attn.${m}_proj.weight`), r, h, h)));
    const ctx = x.map((_, i) => {
      const o = new Array(h).fill(0);
      for (let head = 0; head < a.heads; head++) {
        const sc = x.map((__, j) => {
          let s = 0;
          for (let d = 0; d < hd; d++) s += q![i]![head * hd + d]! * k![j]![head * hd + d]!;
          return s / Math.sqrt(hd) + inv[i]! * inv[j]! * NEG;
        });
        const m = Math.max(...sc);
        const e = sc.map((s) => Math.exp(s - m));
        const z = e.reduce((s1, s2) => s1 + s2, 0);
        e.forEach((w, j) => { for (let d = 0; d < hd; d++) o[head * hd + d] += (w / z) * v![j]![head * hd + d]!; });
      }
      return matVec(get(`${p}.self_attn.o_proj.weight`), o, h, h);
    });
    const ga = gated ? tanh(`${p}.gate_attn`) : 1;
    const gf = gated ? tanh(`${p}.gate_ffn`) : 1;
    return x.map((r, i) => {
      const hmid = r.map((val, d) => val + ga * ctx[i]![d]!);
      const n2 = layerNorm(hmid, get(`${p}.post_attention_layernorm.weight`), get(`${p}.post_attention_layernorm.bias`), a.normEps);
      const f = matVec(get(`${p}.mlp.fc1.weight`), n2, a.intermediateSize, h, get(`${p}.mlp.fc1.bias`)).map(gelu);
      const y = matVec(get(`${p}.mlp.fc2.weight`), f, h, a.intermediateSize, get(`${p}.mlp.fc2.bias`));
      return hmid.map((val, d) => val + gf * y[d]!);
    });
  };
  const hiddenStates: number[][][] = [];
  for (let l = 0; l < a.numLayers; l++) {
    hiddenStates.push(X);
    X = layer(X, `vision_model.transformer.layers.${l}`, false);
  }
  X = X.map((r, i) => [...layerNorm(r, get('vision_model.layernorm_post.weight'), get('vision_model.layernorm_post.bias'), 1e-5)].map((val, d) => val + tanh('vision_model.post_tile_positional_embedding.gate') * post[(ratioId * T + Math.floor(i / L)) * h + d]!));
  for (let l = 0; l < a.numGlobalLayers; l++) X = layer(X, `vision_model.global_transformer.layers.${l}`, true);
  return X.flatMap((r, i) => (i % L < P ? [[...r, ...a.intermediateLayersIndices.flatMap((li) => hiddenStates[li]![i]!)]] : []));
}

describe('mllama vision reference vs a literal transcription of HF forward', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tiny-vision-dense-'));
  let ref: MllamaReference;
  beforeAll(() => {
    writeTinyCheckpoint('tiny-llama-3.2-vision', dir);
    ref = openMllamaReference(dir);
  }, 60_000);
  afterAll(() => {
    ref?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const [ratioId, mask] of [[2, [1, 1, 0, 0]], [6, [1, 1, 1, 1]], [1, [1, 0, 0, 0]]] as [number, number[]][]) {
    it(`agrees to 1e-10 for aspect ratio id ${ratioId}`, () => {
      const pixels = new Float64Array(4 * 3 * 16 * 16).map((_, i) => Math.sin(i * 0.37) * 2);
      const want = dense(pixels, ratioId, mask, ref.get, ref.vision);
      const got = mllamaVisionForward({ pixelValues: pixels, aspectRatioId: ratioId, aspectRatioMask: mask }, ref.get, ref.vision);
      expect(got).toHaveLength(want.length);
      let maxDiff = 0;
      got.forEach((row, i) => row.forEach((v, d) => (maxDiff = Math.max(maxDiff, Math.abs(v - want[i]![d]!)))));
      expect(maxDiff).toBeLessThan(1e-10);
    });
  }
});
