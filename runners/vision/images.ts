// The one check a backend without image input makes (issue 10): a request that carries images is
// refused with a clear error, never scored text-only as if the image were not there.
import { InputError } from '../../results/errors.ts';

/** Throws InputError if any request carries images; `backend` names the runner in the message. */
export function rejectImages(reqs: readonly { images?: readonly Uint8Array[] }[], backend: string, model: string): void {
  if (reqs.some((r) => r.images !== undefined && r.images.length > 0)) {
    throw new InputError(`model ${model}: the ${backend} backend does not take image input yet, but the task gives images; run image tasks with --backend reference and a vision model such as tiny-llama-3.2-vision`);
  }
}
