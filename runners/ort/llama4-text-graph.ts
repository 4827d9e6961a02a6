// The text side of LLaMA 4 with images on ORT: the LLaMA graph of llama-graph.ts built from a
// Llama4ForConditionalGeneration checkpoint, whose Llama4ForCausalLM tensors sit under
// `language_model.` (read through `prefixedSource`), with early fusion added through the graph's
// `embeddings` hook: one extra input
//   image_features [n, hidden] float32
// whose i-th row replaces the embedding of the i-th `<|patch|>` token of the batch, as
// Llama4ForConditionalGeneration.forward does (`get_placeholder_mask` + `inputs_embeds.masked_scatter`).
// Everything after the embeddings is the text model's graph, unchanged.
import type { ModelArch } from '../arch.ts';
import { InputError } from '../../results/errors.ts';
import { temperatureTuningFrom, type TensorSource } from '../reference-weights.ts';
import { buildLlamaGraph } from './llama-graph.ts';
import type { GraphOps } from './llama-ops.ts';

export const IMAGE_FEATURES_INPUT = 'image_features';

/** `source` with every tensor name looked up as `prefix + name` (HF's `language_model.` nesting). */
export function prefixedSource(source: TensorSource, prefix: string): TensorSource {
  return {
    has: (name) => source.has(prefix + name),
    readFloat32: (name, options) => source.readFloat32(prefix + name, options),
  };
}

/**
 * masked_scatter as graph ops: row r of the flattened batch takes image_features[k] when it is the
 * k-th `<|patch|>` (k = cumsum of the placeholder mask - 1), else keeps its token embedding. The
 * caller feeds exactly as many feature rows as there are `<|patch|>` tokens (at least one row:
 * zeros for text only, so that Gather has something to index).
 */
function scatterImageFeatures(o: GraphOps, tokenEmbeds: string, patchToken: number, hidden: number): string {
  o.g.input(IMAGE_FEATURES_INPUT, 'float32', ['image_tokens', hidden]);
  const isPatch = o.op('Equal', [o.reshape('input_ids', [-1]), o.i64([patchToken], true)]); // [N]
  const order = o.op('Sub', [o.op('CumSum', [o.op('Cast', [isPatch], { to: 7 }), o.i64([0], true)]), o.i64([1], true)]);
  // Rows before the first patch get -1, which Gather would read from the end: clamp (they are not used).
  const rows = o.op('Gather', [IMAGE_FEATURES_INPUT, o.op('Max', [order, o.i64([0], true)])], { axis: 0 }); // [N, h]
  return o.op('Where', [o.unsqueeze(isPatch, [1]), rows, tokenEmbeds]);
}

/**
 * Serialized ModelProto of the text model of a Llama4ForConditionalGeneration checkpoint with the
 * `image_features` input; inputs/outputs otherwise those of buildLlamaGraph with `logits_indices`.
 * `weights` holds the checkpoint's own names (`language_model.model.*`).
 */
export function buildLlama4TextGraph(arch: ModelArch, rawConfig: Record<string, unknown>, weights: TensorSource, patchToken: number): Uint8Array {
  if (arch.modelType !== 'llama4' || !arch.vision) throw new InputError('llama4 text graph: the checkpoint is not a Llama4ForConditionalGeneration (model_type llama4 with vision_config)');
  const t = arch.text;
  if (!Number.isInteger(patchToken) || patchToken < 0 || patchToken >= t.vocabSize) throw new InputError(`config.json: image_token_index ${patchToken} is outside the text vocabulary [0, ${t.vocabSize})`);
  return buildLlamaGraph(arch, prefixedSource(weights, 'language_model.'), {
    temperatureTuning: temperatureTuningFrom(arch, rawConfig),
    logitsIndices: true,
    embeddings: (o, tokenEmbeds) => scatterImageFeatures(o, tokenEmbeds, patchToken, t.hiddenSize),
  });
}
