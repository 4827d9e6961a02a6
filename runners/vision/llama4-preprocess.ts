// Image preprocessing of LLaMA 4, as transformers' Llama4ImageProcessorFast does it
// (src/transformers/models/llama4/image_processing_llama4_fast.py): decode to RGB, pick the tiled
// canvas (`find_supported_resolutions` + `get_best_fit`), resize keeping the aspect ratio
// (`get_max_res_without_distortion`, upscaling capped at one tile), pad right/bottom with 0
// (`pad_to_best_fit`), rescale and normalise IN BFLOAT16 (`rescale_and_normalize` is overridden to
// match Meta's original implementation), split into tiles (`split_to_tiles`), and, when there is
// more than one tile, append a global tile: the whole image resized to one tile, aspect ignored.
// sharp decodes only (decodeRgb, shared with mllama); the resize is Pillow's bilinear (see
// pil-bilinear.ts and the deviation note in docs/multimodal.md).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { InputError } from '../../results/errors.ts';
import { decodeRgb } from './mllama-preprocess.ts';
import { pilBilinearResize, type RawImage } from './pil-bilinear.ts';

/** The preprocessor_config.json fields Llama4ImageProcessorFast reads. */
export interface Llama4ProcessorConfig {
  /** `size` (square): the tile side. */
  tileSize: number;
  /** `max_patches`: most tiles of the canvas (the global tile not counted). */
  maxPatches: number;
  resizeToMaxCanvas: boolean;
  imageMean: readonly [number, number, number];
  imageStd: readonly [number, number, number];
  rescaleFactor: number;
}

/** Llama4ImageProcessorFast class defaults = Llama-4-Scout/Maverick preprocessor_config.json. */
export const LLAMA4_PROCESSOR: Llama4ProcessorConfig = {
  tileSize: 336,
  maxPatches: 16,
  resizeToMaxCanvas: false,
  imageMean: [0.5, 0.5, 0.5],
  imageStd: [0.5, 0.5, 0.5],
  rescaleFactor: 1 / 255,
};

const triple = z.tuple([z.number(), z.number(), z.number()]);
const preprocessorSchema = z.object({
  size: z.object({ height: z.number().int().positive(), width: z.number().int().positive() }).optional(),
  max_patches: z.number().int().positive().optional(),
  resize_to_max_canvas: z.boolean().optional(),
  image_mean: triple.optional(),
  image_std: triple.optional(),
  rescale_factor: z.number().positive().optional(),
});

/**
 * The processor of checkpoint `dir`: its preprocessor_config.json when present, else the class
 * defaults with the tile side of the vision tower (`vision_config.image_size`).
 */
export function llama4ProcessorConfig(dir: string, visionImageSize: number): Llama4ProcessorConfig {
  const file = join(dir, 'preprocessor_config.json');
  if (!existsSync(file)) return { ...LLAMA4_PROCESSOR, tileSize: visionImageSize };
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new InputError(`${file}: not valid JSON (${(error as Error).message}); restore the checkpoint's preprocessor_config.json`);
  }
  const parsed = preprocessorSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new InputError(`${file}: bad field ${issue.path.join('.')}: ${issue.message}`);
  }
  const p = parsed.data;
  // find_supported_resolutions raises on a non-square size; so do we.
  if (p.size && p.size.height !== p.size.width) throw new InputError(`${file}: size must be square (got ${p.size.height}x${p.size.width}), as Llama4ImageProcessorFast requires`);
  const tileSize = p.size?.height ?? visionImageSize;
  if (tileSize !== visionImageSize) throw new InputError(`${file}: size ${tileSize} differs from vision_config.image_size ${visionImageSize}; the vision tower takes tiles of image_size`);
  return {
    tileSize,
    maxPatches: p.max_patches ?? LLAMA4_PROCESSOR.maxPatches,
    resizeToMaxCanvas: p.resize_to_max_canvas ?? LLAMA4_PROCESSOR.resizeToMaxCanvas,
    imageMean: p.image_mean ?? LLAMA4_PROCESSOR.imageMean,
    imageStd: p.image_std ?? LLAMA4_PROCESSOR.imageStd,
    rescaleFactor: p.rescale_factor ?? LLAMA4_PROCESSOR.rescaleFactor,
  };
}

/**
 * find_supported_resolutions: every (h, w) tile arrangement with h * w <= maxChunks, as
 * [height, width] in pixels, in HF's order (grouped by aspect ratio in first-seen order while
 * chunk counts go down from maxChunks, factors ascending). The order only matters for ties.
 */
export function findSupportedResolutions(maxChunks: number, tileSize: number): [number, number][] {
  const byRatio = new Map<number, [number, number][]>();
  for (let chunks = maxChunks; chunks >= 1; chunks--) {
    const factors: number[] = [];
    for (let f = 1; f <= chunks; f++) if (chunks % f === 0) factors.push(f);
    for (const h of factors) {
      const w = chunks / h;
      const ratio = h / w;
      if (!byRatio.has(ratio)) byRatio.set(ratio, []);
      byRatio.get(ratio)!.push([h, w]);
    }
  }
  return [...byRatio.values()].flat().map(([h, w]) => [h * tileSize, w * tileSize]);
}

/**
 * get_best_fit: the canvas with the smallest upscale (or, when none upscales, the smallest
 * downscale), the smallest area among equal scales (first on equal areas, torch.argmin). Scales
 * are float32 as torch computes them (an int64 tensor divided by an int).
 */
export function getBestFit(imageHeight: number, imageWidth: number, resolutions: readonly [number, number][], resizeToMaxCanvas = false): [number, number] {
  const scales = resolutions.map(([h, w]) => {
    const sw = Math.fround(w / imageWidth);
    const sh = Math.fround(h / imageHeight);
    return sh > sw ? sw : sh;
  });
  const up = scales.filter((s) => s >= 1);
  const selected = up.length > 0 ? (resizeToMaxCanvas ? Math.max(...up) : Math.min(...up)) : Math.max(...scales.filter((s) => s < 1));
  let best: [number, number] | undefined;
  resolutions.forEach((r, i) => {
    if (scales[i] === selected && (best === undefined || r[0] * r[1] < best[0] * best[1])) best = r;
  });
  return best!;
}

/** get_max_res_without_distortion: the largest [height, width] of the image's aspect that fits. */
export function maxResWithoutDistortion(imageHeight: number, imageWidth: number, targetHeight: number, targetWidth: number): [number, number] {
  const scaleW = targetWidth / imageWidth;
  const scaleH = targetHeight / imageHeight;
  if (scaleW < scaleH) return [Math.min(Math.floor(imageHeight * scaleW), targetHeight), targetWidth];
  return [targetHeight, Math.min(Math.floor(imageWidth * scaleH), targetWidth)];
}

/** float32 -> bfloat16 (round to nearest even), as torch's `.to(torch.bfloat16)`. */
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
export function toBf16(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  u32[0] = ((bits + 0x7fff + ((bits >>> 16) & 1)) & 0xffff0000) >>> 0;
  return f32[0];
}

/**
 * Llama4ImageProcessorFast.rescale_and_normalize of one uint8 value: `images.to(bfloat16) *
 * rescale_factor`, then torchvision normalize `(x - mean) / std` in bfloat16. Each torch op on
 * bfloat16 computes in float32 and rounds to bfloat16 (the Python scalar becomes a float32).
 */
export function rescaleNormalizeBf16(v: number, rescale: number, mean: number, std: number): number {
  const x = toBf16(Math.fround(toBf16(v) * Math.fround(rescale)));
  const centred = toBf16(Math.fround(x - toBf16(mean)));
  return toBf16(Math.fround(centred / toBf16(std)));
}

export interface Llama4PreprocessedImage {
  /** (numTiles, 3, tileSize, tileSize): the canvas tiles row-major, then the global tile if any. */
  pixelValues: Float64Array;
  /** (tiles high, tiles wide) of the canvas: the processor's `aspect_ratios`. */
  aspectRatio: [number, number];
  /** Tiles in pixelValues: tiles high * wide, + 1 global tile when that is more than 1. */
  numTiles: number;
  tileSize: number;
}

/** Writes `img` (already tileSize-aligned canvas size or smaller: zero padded) into tiles at `firstTile`. */
function writeTiles(out: Float64Array, firstTile: number, img: RawImage, canvasH: number, canvasW: number, config: Llama4ProcessorConfig): void {
  const S = config.tileSize;
  const tilesW = canvasW / S;
  // The 256 possible values of each channel, rescaled and normalised once.
  const lut = [0, 1, 2].map((c) => Float64Array.from({ length: 256 }, (_, v) => rescaleNormalizeBf16(v, config.rescaleFactor, config.imageMean[c]!, config.imageStd[c]!)));
  for (let y = 0; y < canvasH; y++) {
    for (let x = 0; x < canvasW; x++) {
      // split_to_tiles: tile (ty, tx) row-major.
      const tile = firstTile + Math.floor(y / S) * tilesW + Math.floor(x / S);
      const inside = y < img.height && x < img.width;
      for (let c = 0; c < 3; c++) {
        // pad_to_best_fit pads with 0 before the rescale, so padding normalises like a black pixel.
        const v = inside ? img.data[(y * img.width + x) * 3 + c]! : 0;
        out[((tile * 3 + c) * S + (y % S)) * S + (x % S)] = lut[c]![v]!;
      }
    }
  }
}

/** Llama4ImageProcessorFast._preprocess for one decoded RGB image. */
export function preprocessLlama4Rgb(img: RawImage, config: Llama4ProcessorConfig): Llama4PreprocessedImage {
  const S = config.tileSize;
  const [targetH, targetW] = getBestFit(img.height, img.width, findSupportedResolutions(config.maxPatches, S), config.resizeToMaxCanvas);
  // Without resize_to_max_canvas, upscaling stops at one tile side (max_upscaling_size = size.height).
  const [boundH, boundW] = config.resizeToMaxCanvas
    ? [targetH, targetW]
    : [Math.min(Math.max(img.height, S), targetH), Math.min(Math.max(img.width, S), targetW)];
  const [h, w] = maxResWithoutDistortion(img.height, img.width, boundH, boundW);
  const resized = pilBilinearResize(img, Math.max(w, 1), Math.max(h, 1));
  const ratioH = targetH / S;
  const ratioW = targetW / S;
  const canvasTiles = ratioH * ratioW;
  const numTiles = canvasTiles > 1 ? canvasTiles + 1 : 1;
  const pixelValues = new Float64Array(numTiles * 3 * S * S);
  writeTiles(pixelValues, 0, resized, targetH, targetW, config);
  if (canvasTiles > 1) writeTiles(pixelValues, canvasTiles, pilBilinearResize(img, S, S), S, S, config);
  return { pixelValues, aspectRatio: [ratioH, ratioW], numTiles, tileSize: S };
}

/** Decode + preprocess one image file; `name` appears in errors. */
export async function preprocessLlama4Image(bytes: Uint8Array, name: string, config: Llama4ProcessorConfig): Promise<Llama4PreprocessedImage> {
  return preprocessLlama4Rgb(await decodeRgb(bytes, name), config);
}
