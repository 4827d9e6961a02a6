// PIL's BILINEAR resize of an 8-bit image, reproduced bit for bit so that our pixel values equal
// what HF's MllamaImageProcessor feeds the model (it resizes through `PIL.Image.resize(...,
// BILINEAR)`). sharp's `linear` kernel is a different filter (libvips reduce), hence this file.
// Algorithm after Pillow src/libImaging/Resample.c: `precompute_coeffs` (triangle filter whose
// support widens by the scale when downscaling, i.e. antialiased), `normalize_coeffs_8bpc`
// (fixed point, PRECISION_BITS = 32 - 8 - 2), a horizontal pass then a vertical pass, each
// rounding and clipping to uint8. A pass whose size does not change is skipped, as Pillow does.

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;

/** An interleaved 8-bit image: `data[(y * width + x) * channels + c]`. */
export interface RawImage {
  width: number;
  height: number;
  channels: number;
  data: Uint8Array;
}

interface Coeffs {
  bounds: Int32Array; // [xmin, count] per output pixel
  kernelSize: number;
  weights: Int32Array; // fixed-point weights, kernelSize per output pixel
}

/** Pillow's bilinear filter: a triangle of support 1. */
function triangle(x: number): number {
  const a = Math.abs(x);
  return a < 1 ? 1 - a : 0;
}

function precomputeCoeffs(inSize: number, outSize: number): Coeffs {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 1 * filterScale;
  const kernelSize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * kernelSize);
  const pre = new Float64Array(kernelSize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterScale;
    // C's (int) cast truncates toward zero.
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let total = 0;
    pre.fill(0);
    for (let x = 0; x < xmax; x++) {
      const w = triangle((x + xmin - center + 0.5) * ss);
      pre[x] = w;
      total += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = total !== 0 ? pre[x]! / total : pre[x]!;
      weights[xx * kernelSize + x] = Math.trunc(w < 0 ? -0.5 + w * ONE : 0.5 + w * ONE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { bounds, kernelSize, weights };
}

function clip8(sum: number): number {
  const v = Math.floor(sum / ONE); // Pillow: ss >> PRECISION_BITS on a non-negative int
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

function resampleHorizontal(img: RawImage, outWidth: number): RawImage {
  const { width, height, channels, data } = img;
  const k = precomputeCoeffs(width, outWidth);
  const out = new Uint8Array(outWidth * height * channels);
  for (let y = 0; y < height; y++) {
    for (let xx = 0; xx < outWidth; xx++) {
      const xmin = k.bounds[xx * 2]!;
      const count = k.bounds[xx * 2 + 1]!;
      for (let c = 0; c < channels; c++) {
        let ss = ONE / 2;
        for (let x = 0; x < count; x++) ss += data[(y * width + xmin + x) * channels + c]! * k.weights[xx * k.kernelSize + x]!;
        out[(y * outWidth + xx) * channels + c] = clip8(ss);
      }
    }
  }
  return { width: outWidth, height, channels, data: out };
}

function resampleVertical(img: RawImage, outHeight: number): RawImage {
  const { width, height, channels, data } = img;
  const k = precomputeCoeffs(height, outHeight);
  const out = new Uint8Array(width * outHeight * channels);
  for (let yy = 0; yy < outHeight; yy++) {
    const ymin = k.bounds[yy * 2]!;
    const count = k.bounds[yy * 2 + 1]!;
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) {
        let ss = ONE / 2;
        for (let y = 0; y < count; y++) ss += data[((ymin + y) * width + x) * channels + c]! * k.weights[yy * k.kernelSize + y]!;
        out[(yy * width + x) * channels + c] = clip8(ss);
      }
    }
  }
  return { width, height: outHeight, channels, data: out };
}

/** `PIL.Image.resize((outWidth, outHeight), Image.BILINEAR)` on an 8-bit image. */
export function pilBilinearResize(img: RawImage, outWidth: number, outHeight: number): RawImage {
  let result = img;
  if (outWidth !== img.width) result = resampleHorizontal(result, outWidth);
  if (outHeight !== img.height) result = resampleVertical(result, outHeight);
  return result;
}
