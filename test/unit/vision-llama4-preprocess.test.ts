// LLaMA 4 image preprocessing (Llama4ImageProcessorFast), the processor's token layout, the pixel
// shuffle and the vision RoPE angles: pure functions, checked against transformers' docstrings and
// tests, values derived by hand, and independent re-implementations written differently.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../results/errors.ts';
import { LLAMA_4 } from '../../harness/zoo/llama-4.ts';
import {
  LLAMA4_PROCESSOR,
  findSupportedResolutions,
  llama4ProcessorConfig,
  getBestFit,
  maxResWithoutDistortion,
  preprocessLlama4Image,
  preprocessLlama4Rgb,
  rescaleNormalizeBf16,
  type Llama4ProcessorConfig,
} from '../../runners/vision/llama4-preprocess.ts';
import { llama4TokensPerTile, llama4VisionArch, pixelShuffle, visionRopeAngles } from '../../runners/vision/llama4-reference.ts';
import { llama4ImagePromptIds, patchEmbeddings } from '../../runners/vision/llama4-text.ts';

/**
 * bfloat16 rounding written independently of the code's bit manipulation: scale to 8 significant
 * bits by the power of two of x, round half to even, scale back.
 */
function bf16Ref(x: number): number {
  if (x === 0) return 0;
  const q = 2 ** (Math.floor(Math.log2(Math.abs(x))) - 7);
  const n = x / q;
  const fl = Math.floor(n);
  const r = n - fl === 0.5 ? (fl % 2 === 0 ? fl : fl + 1) : Math.round(n);
  return r * q;
}

/**
 * Llama4ImageProcessorFast.rescale_and_normalize with mean = std = 0.5 (Scout's
 * preprocessor_config.json): bf16(v) * rescale_factor in float32 then rounded to bf16; minus 0.5,
 * rounded to bf16; divided by 0.5 (exact).
 */
const expected = (v: number): number => bf16Ref(bf16Ref(Math.fround(v * Math.fround(1 / 255))) - 0.5) / 0.5;

describe('Llama4ImageProcessorFast canvas selection', () => {
  it('lists resolutions as find_supported_resolutions does (its docstring, max_num_chunks=4, patch 224)', () => {
    expect(findSupportedResolutions(4, 224)).toEqual([[224, 896], [448, 448], [224, 224], [896, 224], [224, 672], [672, 224], [224, 448], [448, 224]]);
  });

  it('picks the canvas of get_best_fit\'s docstring example', () => {
    // image (200, 300) over [[224, 672], [672, 224], [224, 448], [448, 224], [224, 224]] -> [224, 448].
    expect(getBestFit(200, 300, [[224, 672], [672, 224], [224, 448], [448, 224], [224, 224]])).toEqual([224, 448]);
    // resize_to_max_canvas takes the largest upscale instead: 100x100 -> 448x448 (4.48) over 2.24.
    expect(getBestFit(100, 100, [[224, 672], [224, 224], [448, 448]], true)).toEqual([448, 448]);
  });

  it('sizes without distortion as get_max_res_without_distortion\'s code does (floor)', () => {
    // Its docstring's examples, worked through the code by hand: (200, 300) into (450, 200): width is
    // limiting (200/300 < 450/200), height = floor(200 * 2/3) = floor(133.3) = 133; (800, 600) into
    // (450, 1300): height limits, width = floor(600 * 450/800) = floor(337.5) = 337. The docstring
    // prints (134, 200) and (450, 338), which the code's math.floor does not give.
    expect(maxResWithoutDistortion(200, 300, 450, 200)).toEqual([133, 200]);
    expect(maxResWithoutDistortion(800, 600, 450, 1300)).toEqual([450, 337]);
  });

  it('splits a 400x400 image into 16 tiles + the global tile (transformers test_split_tiles: size 20, max_patches 16)', () => {
    const config: Llama4ProcessorConfig = { ...LLAMA4_PROCESSOR, tileSize: 20, maxPatches: 16 };
    const out = preprocessLlama4Rgb({ width: 400, height: 400, channels: 3, data: new Uint8Array(400 * 400 * 3) }, config);
    expect(out.numTiles).toBe(17);
    expect(out.aspectRatio).toEqual([4, 4]);
    expect(out.pixelValues.length).toBe(17 * 3 * 20 * 20);
  });

  it('keeps a one-tile image at one tile, without a global tile', () => {
    const config: Llama4ProcessorConfig = { ...LLAMA4_PROCESSOR, tileSize: 4, maxPatches: 4 };
    const out = preprocessLlama4Rgb({ width: 3, height: 3, channels: 3, data: new Uint8Array(27).fill(255) }, config);
    // 3x3 < one 4x4 tile: the smallest upscale (4/3) is shared by every 1-wide or 1-high canvas, and
    // the smallest area among them is the 1x1 canvas; the bound min(max(3, 4), 4) = 4 lets the image
    // grow to 4x4, so every value is white (255 -> 1) and nothing is padding.
    expect(out.numTiles).toBe(1);
    expect(out.aspectRatio).toEqual([1, 1]);
    expect([...out.pixelValues]).toEqual(new Array(48).fill(1));
  });
});

describe('Llama4ImageProcessorFast pixel values of a 2x3 image (hand-derived)', () => {
  it('rescales and normalises in bfloat16', () => {
    // By hand: 0 -> -1 and 255 -> 1 exactly. 128/255 = 0.50196 lies in [0.5, 1) where bf16 steps by
    // 2^-8: 128.50 steps rounds to 129 -> 0.50390625; minus 0.5 = 2^-8; / 0.5 = 0.0078125 (float
    // math would give 0.0039216). 8/255 = 0.031373 steps by 2^-12: 128.50 -> 129 -> 0.031494140625;
    // minus 0.5 = -0.468505859375 steps by 2^-9: -239.875 -> -240 -> -0.46875; / 0.5 = -0.9375.
    expect(rescaleNormalizeBf16(0, 1 / 255, 0.5, 0.5)).toBe(-1);
    expect(rescaleNormalizeBf16(255, 1 / 255, 0.5, 0.5)).toBe(1);
    expect(rescaleNormalizeBf16(128, 1 / 255, 0.5, 0.5)).toBe(0.0078125);
    expect(rescaleNormalizeBf16(8, 1 / 255, 0.5, 0.5)).toBe(-0.9375);
    for (let v = 0; v < 256; v++) expect(rescaleNormalizeBf16(v, 1 / 255, 0.5, 0.5)).toBe(expected(v));
  });

  // R: row 0 = 8, 16, 24; row 1 = 200, 240, 160. G: row 0 white, row 1 black. B: 128 everywhere.
  const R = [[8, 16, 24], [200, 240, 160]];
  const raw = new Uint8Array(2 * 3 * 3);
  for (let y = 0; y < 2; y++) for (let x = 0; x < 3; x++) raw.set([R[y]![x]!, y === 0 ? 255 : 0, 128], (y * 3 + x) * 3);
  const config: Llama4ProcessorConfig = { ...LLAMA4_PROCESSOR, tileSize: 2, maxPatches: 2 };
  // Canvases for 2 chunks: [2, 4], [4, 2], [2, 2]; scales min(w/3, h/2) = 1, 2/3, 2/3: the only
  // upscale (1) is [2, 4], so 1x2 tiles; bound (min(max(2,2),2), min(max(3,2),4)) = (2, 3): no
  // resize; the 4th column is padding (0 -> -1). Then the global tile: 2x3 resized to 2x2. Pillow's
  // bilinear (Resample.c precompute_coeffs; torchvision's antialiased uint8 path is a port of it)
  // for 3 -> 2 columns: scale 1.5, output 0 centred at 0.75 reads columns 0, 1 with triangle weights
  // 5/6, 1/2 -> normalised 5/8, 3/8; output 1 (centre 2.25) reads columns 1, 2 with 3/8, 5/8. Rows
  // are kept. R row 0: 5/8*8 + 3/8*16 = 11, 3/8*16 + 5/8*24 = 21; row 1: 125 + 90 = 215, 90 + 100 = 190.
  const tile = (r: number[][], g: number[][], b: number[][]) => [r, g, b].flatMap((ch) => ch.flat().map(expected));
  const want = [
    ...tile([[8, 16], [200, 240]], [[255, 255], [0, 0]], [[128, 128], [128, 128]]),
    ...tile([[24, 0], [160, 0]], [[255, 0], [0, 0]], [[128, 0], [128, 0]]),
    ...tile([[11, 21], [215, 190]], [[255, 255], [0, 0]], [[128, 128], [128, 128]]),
  ];

  it('tiles, pads and appends the global tile', () => {
    const out = preprocessLlama4Rgb({ width: 3, height: 2, channels: 3, data: raw }, config);
    expect(out.aspectRatio).toEqual([1, 2]);
    expect(out.numTiles).toBe(3);
    expect([...out.pixelValues]).toEqual(want);
  });

  it('gives the same values from a PNG file decoded by sharp', async () => {
    const png = new Uint8Array(await sharp(raw, { raw: { width: 3, height: 2, channels: 3 } }).png().toBuffer());
    const out = await preprocessLlama4Image(png, 'tiny.png', config);
    expect([...out.pixelValues]).toEqual(want);
  });

  it('refuses bytes that are not an image, naming the file', async () => {
    await expect(preprocessLlama4Image(new Uint8Array([1, 2, 3]), 'broken.png', config)).rejects.toThrow(InputError);
    await expect(preprocessLlama4Image(new Uint8Array([1, 2, 3]), 'broken.png', config)).rejects.toThrow(/image broken\.png: cannot decode/);
  });
});

describe('preprocessor_config.json', () => {
  it('reads Scout\'s fields, defaults to the class defaults at the tower\'s tile size, and names a bad file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'llama4-proc-'));
    try {
      expect(llama4ProcessorConfig(dir, 28)).toEqual({ ...LLAMA4_PROCESSOR, tileSize: 28 });
      // meta-llama/Llama-4-Scout-17B-16E preprocessor_config.json fields (extra keys are ignored).
      const scout = { crop_size: null, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5], max_patches: 16, resample: 2, rescale_factor: 0.00392156862745098, resize_to_max_canvas: false, size: { height: 336, width: 336 } };
      writeFileSync(join(dir, 'preprocessor_config.json'), JSON.stringify({ ...scout, max_patches: 4 }));
      expect(llama4ProcessorConfig(dir, 336)).toEqual({ ...LLAMA4_PROCESSOR, maxPatches: 4, rescaleFactor: 0.00392156862745098 });
      expect(() => llama4ProcessorConfig(dir, 28)).toThrow(/size 336 differs from vision_config.image_size 28/);
      writeFileSync(join(dir, 'preprocessor_config.json'), JSON.stringify({ ...scout, size: { height: 336, width: 224 } }));
      expect(() => llama4ProcessorConfig(dir, 336)).toThrow(/size must be square/);
      writeFileSync(join(dir, 'preprocessor_config.json'), JSON.stringify({ ...scout, max_patches: 'many' }));
      expect(() => llama4ProcessorConfig(dir, 336)).toThrow(/preprocessor_config\.json: bad field max_patches/);
      writeFileSync(join(dir, 'preprocessor_config.json'), '{');
      expect(() => llama4ProcessorConfig(dir, 336)).toThrow(InputError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Llama4Processor token layout (_prompt_split_image)', () => {
  const T = { imageStart: 1, imageEnd: 2, image: 3, patch: 9, tileX: 5, tileY: 6 };

  it('lays out a 2x2 canvas: rows of patch groups, x separators between, a y separator after each row, then the global tile', () => {
    // "<|image_start|>" + ("<|patch|>"*n + "<|tile_x_separator|>" + "<|patch|>"*n + "<|tile_y_separator|>") * 2
    // + "<|image|>" + "<|patch|>"*n + "<|image_end|>", n = 2.
    expect(llama4ImagePromptIds(T, [2, 2], 2)).toEqual([1, 9, 9, 5, 9, 9, 6, 9, 9, 5, 9, 9, 6, 3, 9, 9, 2]);
    expect(llama4ImagePromptIds(T, [1, 2], 1)).toEqual([1, 9, 5, 9, 6, 3, 9, 2]);
  });

  it('lays out a single tile with no separators', () => {
    expect(llama4ImagePromptIds(T, [1, 1], 3)).toEqual([1, 3, 9, 9, 9, 2]);
  });

  it('has 144 patches per tile for Scout/Maverick (processor: (336 // 14)^2 // downsample_ratio 4)', () => {
    const scout = LLAMA_4.find((e) => e.id === 'llama-4-scout')!.config as Record<string, unknown>;
    expect(llama4TokensPerTile(llama4VisionArch(scout.vision_config as Record<string, unknown>))).toBe(144);
  });

  it('puts the i-th feature at the i-th <|patch|> and refuses a count mismatch', () => {
    const f = [Float64Array.of(1), Float64Array.of(2)];
    const map = patchEmbeddings([7, 9, 4, 9], 9, f);
    expect([...map.entries()].map(([k, v]) => [k, v[0]])).toEqual([[1, 1], [3, 2]]);
    expect(() => patchEmbeddings([7, 9, 4], 9, f)).toThrow(/1 <\|patch\|> tokens in the sequence, 2 features/);
  });
});

/** torch .permute(perm).contiguous() of a row-major array of shape `shape`. */
function permute(data: Float64Array, shape: number[], perm: number[]): { data: Float64Array; shape: number[] } {
  const outShape = perm.map((p) => shape[p]!);
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const out = new Float64Array(data.length);
  const idx = new Array<number>(outShape.length).fill(0);
  for (let flat = 0; flat < out.length; flat++) {
    let rem = flat;
    for (let d = outShape.length - 1; d >= 0; d--) {
      idx[d] = rem % outShape[d]!;
      rem = Math.floor(rem / outShape[d]!);
    }
    let src = 0;
    perm.forEach((p, d) => (src += idx[d]! * strides[p]!));
    out[flat] = data[src]!;
  }
  return { data: out, shape: outShape };
}

describe('Llama 4 vision encoder pieces', () => {
  it('pixel_shuffle equals transformers\' view / permute / view / permute sequence, done literally', () => {
    const side = 4;
    const C = 3;
    const patches = Array.from({ length: side * side }, (_, i) => Float64Array.from({ length: C }, (_, c) => i * 10 + c));
    // modeling_llama4.pixel_shuffle(x, 0.5), batch 1: views keep the row-major data, permutes move it.
    let t: { data: Float64Array; shape: number[] } = { data: Float64Array.from(patches.flatMap((p) => [...p])), shape: [1, side, side * 0.5, C / 0.5] };
    t = permute(t.data, t.shape, [0, 2, 1, 3]);
    t = permute(t.data, [1, side * 0.5, side * 0.5, C / 0.25], [0, 2, 1, 3]);
    const literal = Array.from({ length: 4 }, (_, i) => [...t.data.subarray(i * 12, (i + 1) * 12)]);
    expect(pixelShuffle(patches, 0.5).map((x) => [...x])).toEqual(literal);
    // By hand: output token 0 = patches (0,0), (0,1), (1,0), (1,1) = 0, 1, 4, 5.
    expect([...pixelShuffle(patches, 0.5)[0]!].filter((_, k) => k % C === 0)).toEqual([0, 10, 40, 50]);
  });

  it('rotates patch (row, col) by (col + 1) and (row + 1) times the frequencies; the class token not at all', () => {
    // Llama4VisionRotaryEmbedding with head_dim 8: freq_dim 4, rope_freq = 1 / 10000^([0, 2] / 4) =
    // [1, 0.01]; pairs 0-1 take x + 1, pairs 2-3 take y + 1. Patch 6 of a 4x4 grid is row 1, col 2.
    const a = llama4VisionArch({ hidden_size: 16, num_attention_heads: 2, intermediate_size: 64, num_hidden_layers: 1, image_size: 28, patch_size: 7, projector_input_dim: 8, projector_output_dim: 8, vision_output_dim: 8 });
    const angles = visionRopeAngles(a);
    expect(angles).toHaveLength(17);
    const close = (got: Float64Array, want: number[]) => want.forEach((w, i) => expect(got[i]).toBeCloseTo(w, 14));
    close(angles[0]!, [1, 0.01, 1, 0.01]);
    close(angles[6]!, [3, 0.03, 2, 0.02]);
    expect([...angles[16]!]).toEqual([0, 0, 0, 0]);
  });

  it('names a bad vision_config field', () => {
    const base = { hidden_size: 16, num_attention_heads: 2, intermediate_size: 64, num_hidden_layers: 1, image_size: 28, patch_size: 7, projector_input_dim: 8, projector_output_dim: 8, vision_output_dim: 8 };
    expect(() => llama4VisionArch({ ...base, patch_size: 0 })).toThrow(/vision_config\.patch_size must be a positive integer/);
    expect(() => llama4VisionArch({ ...base, intermediate_size: 32 })).toThrow(/intermediate_size 32 must be hidden_size \/ pixel_shuffle_ratio² = 64/);
    expect(() => llama4VisionArch({ ...base, image_size: 21 })).toThrow(/image_size \/ patch_size = 3 must be an integer multiple of 1 \/ pixel_shuffle_ratio = 2/);
    expect(() => llama4VisionArch({ ...base, pixel_shuffle_ratio: 0.3 })).toThrow(InputError);
  });
});
