import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../results/errors.ts';
import { pilBilinearResize } from '../../runners/vision/pil-bilinear.ts';
import {
  LLAMA_32_VISION_PROCESSOR,
  decodeRgb,
  fitToCanvas,
  optimalTiledCanvas,
  preprocessImage,
  preprocessRgb,
  supportedAspectRatios,
  type MllamaProcessorConfig,
} from '../../runners/vision/mllama-preprocess.ts';

const MEAN = LLAMA_32_VISION_PROCESSOR.imageMean;
const STD = LLAMA_32_VISION_PROCESSOR.imageStd;
const norm = (v: number, c: number) => (v / 255 - MEAN[c]!) / STD[c]!;

describe('Mllama tiling', () => {
  it('lists the supported aspect ratios in HF order', () => {
    // transformers get_all_supported_aspect_ratios docstring: get_all_supported_aspect_ratios(4).
    expect(supportedAspectRatios(4)).toEqual([[1, 1], [1, 2], [1, 3], [1, 4], [2, 1], [2, 2], [3, 1], [4, 1]]);
  });

  // transformers tests/models/mllama/test_image_processing_mllama.py::test_image_correctly_tiled
  // (size 50, max_image_tiles 4; PIL sizes are (width, height)): aspect_ratio_ids and masks.
  const upstream: { w: number; h: number; id: number; mask: number[] }[] = [
    { w: 80, h: 95, id: 6, mask: [1, 1, 1, 1] },
    { w: 101, h: 50, id: 3, mask: [1, 1, 1, 0] },
    { w: 20, h: 39, id: 1, mask: [1, 0, 0, 0] },
    { w: 51, h: 20, id: 2, mask: [1, 1, 0, 0] },
    { w: 150, h: 150, id: 6, mask: [1, 1, 1, 1] },
  ];
  const config50: MllamaProcessorConfig = { ...LLAMA_32_VISION_PROCESSOR, tileSize: 50, maxImageTiles: 4 };
  for (const { w, h, id, mask } of upstream) {
    it(`tiles a black ${w}x${h} image as HF's test expects (id ${id})`, () => {
      const out = preprocessRgb({ width: w, height: h, channels: 3, data: new Uint8Array(w * h * 3) }, config50);
      expect(out.aspectRatioId).toBe(id);
      expect(out.aspectRatioMask).toEqual(mask);
      // Upstream: tiles past the real ones are all zero (pack_images), real ones are not.
      const tile = 3 * 50 * 50;
      const empty = mask.map((_, t) => out.pixelValues.subarray(t * tile, (t + 1) * tile).every((v) => v === 0));
      expect(empty).toEqual(mask.map((m) => m === 0));
    });
  }

  it('fits to the canvas keeping the aspect ratio, never below one pixel', () => {
    // By hand from get_image_size_fit_to_canvas: 1000x500 (h x w) into a 1120x560 canvas:
    // target (1000, 560), scale_w 1.12 >= scale_h 1 -> (1000, floor(500 * 1) = 500).
    expect(fitToCanvas(1000, 500, 1120, 560, 560)).toEqual([1000, 500]);
    // 1 x 9999999 into 560 x 2240 -> height floor(1 * 0.000224) = 0 -> 1 (transformers' `or 1`).
    expect(fitToCanvas(1, 9999999, 560, 2240, 560)).toEqual([1, 2240]);
    // Docstring example of get_optimal_tiled_canvas: an image can be upscaled to 224x224 and 224x448
    // at the same scale; the smaller area wins.
    expect(optimalTiledCanvas(100, 100, 2, 224)).toEqual([224, 224]);
  });
});

describe('PIL bilinear resize', () => {
  it('downscales 4 -> 2 with the antialiased triangle filter', () => {
    // By hand from Pillow Resample.c: scale 2, support 2; output 0 centre 1.0 takes pixels 0..2 with
    // weights .75,.75,.25 (/1.75) -> (0*3 + 70*3 + 140) / 7 = 50; output 1 centre 3.0 takes pixels
    // 1..3 with .25,.75,.75 -> (70 + 140*3 + 210*3) / 7 = 160.
    const out = pilBilinearResize({ width: 4, height: 1, channels: 1, data: Uint8Array.from([0, 70, 140, 210]) }, 2, 1);
    expect([...out.data]).toEqual([50, 160]);
  });

  it('upscales 2 -> 4 by linear interpolation with edge clamping', () => {
    // By hand: centres .25, .75, 1.25, 1.75 -> 0, .75*0+.25*100 = 25, 75, 100.
    const out = pilBilinearResize({ width: 1, height: 2, channels: 1, data: Uint8Array.from([0, 100]) }, 1, 4);
    expect([...out.data]).toEqual([0, 25, 75, 100]);
  });
});

describe('Mllama preprocessing of a decoded file', () => {
  const config: MllamaProcessorConfig = { ...LLAMA_32_VISION_PROCESSOR, tileSize: 2, maxImageTiles: 4 };

  it('pads, rescales, normalises and tiles a 4x3 PNG exactly', async () => {
    // 4 wide x 3 high, pixel (x, y) = (10x + 20y, 100, 255 - 10x). By hand: the canvas is 4x4 (2x2
    // tiles, scale 1: no resize), the fourth row is 0-padding; tile t covers rows 2*(t>>1).., cols 2*(t&1)..
    const raw = new Uint8Array(4 * 3 * 3);
    for (let y = 0; y < 3; y++) for (let x = 0; x < 4; x++) raw.set([10 * x + 20 * y, 100, 255 - 10 * x], (y * 4 + x) * 3);
    const png = await sharp(raw, { raw: { width: 4, height: 3, channels: 3 } }).png().toBuffer();
    const out = await preprocessImage(png, 'synthetic.png', config);
    expect(out.aspectRatio).toEqual([2, 2]);
    expect(out.aspectRatioId).toBe(6); // (2, 2) is 5th in the supported list, ids are 1-based
    expect(out.aspectRatioMask).toEqual([1, 1, 1, 1]);
    const at = (tile: number, c: number, y: number, x: number) => out.pixelValues[((tile * 3 + c) * 2 + y) * 2 + x]!;
    // Tile 1 (top right), row 1, col 0 = pixel (x 2, y 1) = (40, 100, 235).
    expect(at(1, 0, 1, 0)).toBeCloseTo(norm(40, 0), 12);
    expect(at(1, 1, 1, 0)).toBeCloseTo(norm(100, 1), 12);
    expect(at(1, 2, 1, 0)).toBeCloseTo(norm(235, 2), 12);
    // Tile 3 (bottom right), row 0, col 1 = pixel (x 3, y 2) = (70, 100, 225); row 1 is padding (0).
    expect(at(3, 0, 0, 1)).toBeCloseTo(norm(70, 0), 12);
    expect(at(3, 2, 0, 1)).toBeCloseTo(norm(225, 2), 12);
    expect(at(3, 1, 1, 1)).toBeCloseTo(norm(0, 1), 12);
  });

  it('composites transparent pixels over white and expands grey to RGB', async () => {
    const rgba = await sharp(new Uint8Array([9, 9, 9, 0]), { raw: { width: 1, height: 1, channels: 4 } }).png().toBuffer();
    expect([...(await decodeRgb(rgba, 'a.png')).data]).toEqual([255, 255, 255]);
    const grey = await sharp(new Uint8Array([77]), { raw: { width: 1, height: 1, channels: 1 } }).png().toBuffer();
    expect([...(await decodeRgb(grey, 'g.png')).data]).toEqual([77, 77, 77]);
  });

  it('names the file of a corrupt or unsupported image', async () => {
    const png = await sharp(new Uint8Array(12), { raw: { width: 2, height: 2, channels: 3 } }).png().toBuffer();
    await expect(preprocessImage(png.subarray(0, 20), 'scans/cut.png', config)).rejects.toThrow(InputError);
    await expect(preprocessImage(png.subarray(0, 20), 'scans/cut.png', config)).rejects.toThrow(/image scans\/cut\.png: cannot decode/);
    await expect(preprocessImage(new TextEncoder().encode('not an image'), 'notes.txt', config)).rejects.toThrow(/image notes\.txt/);
  });
});
