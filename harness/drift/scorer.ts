// Next-token logits at every position of a token window, from either backend. The reference side
// is the float64 forward; the ORT side builds a graph from the (adapted) reference weights, so an
// adapter reaches ORT through exactly the tensors the reference forward multiplies.
import { referenceLogits } from '../../runners/reference.ts';
import type { ReferenceModel } from '../../runners/reference-weights.ts';
import { referenceTensorSource } from '../../runners/peft/tensor-source.ts';
import type { DriftBackend } from './pair.ts';

export interface LogitScorer {
  /** Row i: logits for the token after ids[i]. */
  logits(ids: readonly number[]): Promise<Float64Array[] | Float32Array[]>;
  close(): Promise<void>;
}

function referenceScorer(model: ReferenceModel): LogitScorer {
  return {
    logits: (ids) => Promise.resolve(referenceLogits(model, ids)),
    close: () => Promise.resolve(),
  };
}

/** onnxruntime is imported only when an ORT side is asked for (DESIGN.md: lazy heavy imports). */
async function ortScorer(model: ReferenceModel, rawConfig: Record<string, unknown>): Promise<LogitScorer> {
  const { OrtLlamaModel } = await import('../../runners/ort/llama-model.ts');
  const ort = await OrtLlamaModel.create(model.arch, rawConfig, referenceTensorSource(model));
  const vocab = model.text.vocabSize;
  return {
    logits: async (ids) => {
      const { logits } = await ort.forward({ inputIds: [ids], attentionMask: [ids.map(() => 1)], past: ort.emptyCache(1) });
      return ids.map((_, i) => logits.subarray(i * vocab, (i + 1) * vocab));
    },
    close: () => ort.close(),
  };
}

export function openScorer(model: ReferenceModel, backend: DriftBackend, rawConfig: Record<string, unknown>): Promise<LogitScorer> {
  return backend === 'ort' ? ortScorer(model, rawConfig) : Promise.resolve(referenceScorer(model));
}
