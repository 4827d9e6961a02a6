// The one check a backend without image input makes (issue 10): a request that carries images is
// refused with a clear error, never scored text-only as if the image were not there. The ort
// backend takes images through its own vision runners (runners/ort/mllama-runner.ts for LLaMA 3.2
// Vision, runners/ort/llama4-vision-runner.ts for LLaMA 4 with a vision tower, chosen by
// runners/open.ts from the config), so on ort this guard only ever sees text-only models.
import { createHash } from 'node:crypto';
import { InputError } from '../../results/errors.ts';

/** Throws InputError if any request carries images; `backend` names the runner in the message. */
export function rejectImages(reqs: readonly { images?: readonly Uint8Array[] }[], backend: string, model: string): void {
  if (!reqs.some((r) => r.images !== undefined && r.images.length > 0)) return;
  if (backend === 'ort') {
    throw new InputError(`model ${model}: is text-only (no vision_config) but the task gives images; choose a vision model such as tiny-llama-3.2-vision or tiny-llama-4-vision, or drop the image task`);
  }
  throw new InputError(`model ${model}: the ${backend} backend does not take image input yet, but the task gives images; run image tasks with --backend ort or reference and a vision model such as tiny-llama-3.2-vision`);
}

/**
 * The one image of a request, encoded once per distinct content (a multiple-choice question repeats
 * its image per choice): null without an image; more than one is an InputError naming the backend.
 */
export async function encodeOnce<T>(
  cache: Map<string, T>,
  images: readonly Uint8Array[] | undefined,
  where: { backend: string; model: string },
  encode: (bytes: Uint8Array, name: string) => Promise<T>,
): Promise<{ key: string; value: T } | null> {
  if (images === undefined || images.length === 0) return null;
  if (images.length > 1) throw new InputError(`model ${where.model}: the ${where.backend} backend takes one image per request, the task gives ${images.length}; use a single-image task`);
  const bytes = images[0]!;
  const key = createHash('sha256').update(bytes).digest('hex');
  let value = cache.get(key);
  if (value === undefined) {
    value = await encode(bytes, `request image (sha256 ${key.slice(0, 12)})`);
    cache.set(key, value);
  }
  return { key, value };
}
