// Parameter count of a whole model: the text model (params/text.ts) and, for multimodal
// checkpoints, the vision tower + projector (params/vision.ts).
import type { ModelArch } from '../../runners/arch.ts';
import { countTextParams } from './text.ts';
import { countVisionParams } from './vision.ts';
import type { ParamCount } from './types.ts';

export function countModelParams(arch: ModelArch): ParamCount {
  const text = countTextParams(arch.text);
  if (!arch.vision || arch.modelType === 'llama') return text;
  const vision = countVisionParams(arch.modelType, arch.vision, arch.text.hiddenSize);
  return { ...text, vision: vision.total, components: { ...text.components, ...vision.components } };
}
