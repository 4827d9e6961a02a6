// Image preprocessing of LLaMA 3.2 Vision, as HF's MllamaImageProcessor does it
// (transformers src/transformers/models/mllama/image_processing_mllama.py): decode, RGB
// (alpha composited over white), pick the tiled canvas, resize keeping the aspect ratio (PIL
// bilinear, see pil-bilinear.ts), pad right/bottom with 0, rescale by 1/255, normalise with the
// processor's mean/std, split into tiles, and compute aspect_ratio_ids / aspect_ratio_mask.
// sharp decodes (PNG/JPEG/WebP...) only; every pixel operation after decoding is done here.
import sharp, { type OutputInfo } from 'sharp';
import { InputError } from '../../results/errors.ts';
import { pilBilinearResize, type RawImage } from './pil-bilinear.ts';

/** The fields of preprocessor_config.json that MllamaImageProcessor reads. */
export interface MllamaProcessorConfig {
  tileSize: number;
  maxImageTiles: number;
  imageMean: readonly [number, number, number];
  imageStd: readonly [number, number, number];
  rescaleFactor: number;
}

/** Llama-3.2-11B-Vision's preprocessor_config.json: size 560, max_image_tiles 4, CLIP mean/std. */
export const LLAMA_32_VISION_PROCESSOR: MllamaProcessorConfig = {
  tileSize: 560,
  maxImageTiles: 4,
  imageMean: [0.48145466, 0.4578275, 0.40821073],
  imageStd: [0.26862954, 0.26130258, 0.27577711],
  rescaleFactor: 1 / 255,
};

export interface PreprocessedImage {
  /** (maxImageTiles, 3, tileSize, tileSize), tiles past `numTiles` are zero as pack_images leaves them. */
  pixelValues: Float64Array;
  /** (tiles high, tiles wide). */
  aspectRatio: [number, number];
  /** 1-based index of the aspect ratio in `supportedAspectRatios` (0 is batch padding). */
  aspectRatioId: number;
  /** maxImageTiles entries, 1 for real tiles. */
  aspectRatioMask: number[];
  numTiles: number;
}

/** get_all_supported_aspect_ratios: every (a, b) with a * b <= maxTiles, a-major. */
export function supportedAspectRatios(maxTiles: number): [number, number][] {
  const out: [number, number][] = [];
  for (let a = 1; a <= maxTiles; a++) for (let b = 1; b <= maxTiles; b++) if (a * b <= maxTiles) out.push([a, b]);
  return out;
}

/**
 * get_optimal_tiled_canvas: the canvas [height, width] that needs the least upscaling (or, when
 * none upscales, the least downscaling), the smallest area on ties. HF reads each arrangement's
 * first element as the height; the set is symmetric so the choice is the same either way.
 */
export function optimalTiledCanvas(imageHeight: number, imageWidth: number, maxTiles: number, tileSize: number): [number, number] {
  const canvases = supportedAspectRatios(maxTiles).map(([a, b]) => [a * tileSize, b * tileSize] as [number, number]);
  const scales = canvases.map(([h, w]) => {
    const sh = h / imageHeight;
    const sw = w / imageWidth;
    return sw > sh ? sh : sw;
  });
  const up = scales.filter((s) => s >= 1);
  const selected = up.length > 0 ? Math.min(...up) : Math.max(...scales.filter((s) => s < 1));
  let best: [number, number] | undefined;
  canvases.forEach((canvas, i) => {
    // np.argmin keeps the first of equal areas.
    if (scales[i] === selected && (best === undefined || canvas[0] * canvas[1] < best[0] * best[1])) best = canvas;
  });
  return best!;
}

/** get_image_size_fit_to_canvas: [height, width] after the aspect-preserving resize. */
export function fitToCanvas(imageHeight: number, imageWidth: number, canvasHeight: number, canvasWidth: number, tileSize: number): [number, number] {
  const clip = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
  const targetWidth = clip(imageWidth, tileSize, canvasWidth);
  const targetHeight = clip(imageHeight, tileSize, canvasHeight);
  const scaleH = targetHeight / imageHeight;
  const scaleW = targetWidth / imageWidth;
  // Newer transformers (`... or 1`) keep at least one row/column for extreme aspect ratios.
  if (scaleW < scaleH) return [Math.min(Math.floor(imageHeight * scaleW) || 1, targetHeight), targetWidth];
  return [targetHeight, Math.min(Math.floor(imageWidth * scaleH) || 1, targetWidth)];
}

/** Decodes an image file to 8-bit RGB, compositing any alpha over white (HF convert_to_rgb). */
export async function decodeRgb(bytes: Uint8Array, name: string): Promise<RawImage> {
  let decoded: { data: Buffer; info: OutputInfo };
  try {
    decoded = await sharp(bytes, { failOn: 'error' })
      .flatten({ background: { r: 255, g: 255, b: 255 } })
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (error) {
    const why = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new InputError(`image ${name}: cannot decode (${why}); expected a PNG, JPEG, WebP, GIF or TIFF file — re-export the image in one of those formats`);
  }
  const { width, height, channels } = decoded.info;
  const src = new Uint8Array(decoded.data.buffer, decoded.data.byteOffset, decoded.data.byteLength);
  if (channels === 3) return { width, height, channels: 3, data: src };
  // Grey images come back with one channel: replicate it, as PIL's convert("RGB") does.
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) for (let c = 0; c < 3; c++) data[i * 3 + c] = src[i * channels + Math.min(c, channels - 1)]!;
  return { width, height, channels: 3, data };
}

/** MllamaImageProcessor.preprocess for one already-decoded RGB image. */
export function preprocessRgb(img: RawImage, config: MllamaProcessorConfig): PreprocessedImage {
  const { tileSize, maxImageTiles } = config;
  const [canvasH, canvasW] = optimalTiledCanvas(img.height, img.width, maxImageTiles, tileSize);
  const tilesH = canvasH / tileSize;
  const tilesW = canvasW / tileSize;
  const [newH, newW] = fitToCanvas(img.height, img.width, canvasH, canvasW, tileSize);
  const resized = pilBilinearResize(img, newW, newH);
  const numTiles = tilesH * tilesW;
  const tileArea = tileSize * tileSize;
  const pixelValues = new Float64Array(maxImageTiles * 3 * tileArea);
  // Pad, rescale, normalise and split in one sweep over the canvas; padding is 0 before the
  // rescale, so it normalises to -mean/std like any black pixel.
  for (let y = 0; y < canvasH; y++) {
    for (let x = 0; x < canvasW; x++) {
      const tile = Math.floor(y / tileSize) * tilesW + Math.floor(x / tileSize);
      const inside = y < newH && x < newW;
      for (let c = 0; c < 3; c++) {
        const v = inside ? resized.data[(y * newW + x) * 3 + c]! : 0;
        const out = (v * config.rescaleFactor - config.imageMean[c]!) / config.imageStd[c]!;
        pixelValues[((tile * 3 + c) * tileSize + (y % tileSize)) * tileSize + (x % tileSize)] = out;
      }
    }
  }
  // convert_aspect_ratios_to_ids looks (tiles high, tiles wide) up in the (a, b) list.
  const ratios = supportedAspectRatios(maxImageTiles);
  const aspectRatioId = ratios.findIndex(([a, b]) => a === tilesH && b === tilesW) + 1;
  const aspectRatioMask = Array.from({ length: maxImageTiles }, (_, i) => (i < numTiles ? 1 : 0));
  return { pixelValues, aspectRatio: [tilesH, tilesW], aspectRatioId, aspectRatioMask, numTiles };
}

/** Decode + preprocess one image file; `name` (its path) appears in errors. */
export async function preprocessImage(bytes: Uint8Array, name: string, config: MllamaProcessorConfig): Promise<PreprocessedImage> {
  return preprocessRgb(await decodeRgb(bytes, name), config);
}
