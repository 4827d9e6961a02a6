// `--peft` on LLaMA 3.2 Vision (mllama) on ORT: the adapter is applied to the float reference text
// model exactly as the reference runner does (runners/peft applyPeftToReference, mode 'unmerged',
// spec strings zero-initialised), and the text LLaMA graph's PEFT plan (llama-peft.ts ortPeftPlan)
// feeds the mllama text graph through the same hook:
// - LoRA / DoRA on self-attention layers and their MLPs: side branches (graph inputs);
// - LoRA / DoRA on cross-attention layers (cross_attn.*, their mlp.*): the reference merges them into
//   the float32 weights it reads by name (runners/peft/lora.ts), so the graph reads those weights;
// - QLoRA: every base Linear but lm_head as NF4 MatMulBnb4 (cross-attention ones included), except
//   those whose adapted weight is no longer the NF4 round trip (a merged cross-attention LoRA), fp32;
// - LLaMA-Adapter V1 / V2 prompts on the self-attention layers, V2 biases / scales / norms; V2's
//   visual path (runners/peft/visual.ts) adds each image's visual query to the prompt feeds.
// The vision tower and projector are never adapted (PEFT's targets live in the language model).
import { officialReleaseArg, parsePeft } from '../peft/spec/index.ts';
import { InputError } from '../../results/errors.ts';
import type { ReferencePeft, VisualAdapter } from '../peft/branch.ts';
import { applyPeftToReference, type AdapterInit } from '../peft/index.ts';
import { referenceModules } from '../peft/modules.ts';
import { forwardVisual } from '../peft/visual.ts';
import type { ReferenceModel } from '../reference-weights.ts';
import type { MllamaReference } from '../vision/mllama-checkpoint.ts';
import type { TensorGetter } from '../vision/mllama-reference.ts';
import type { LlamaGraphPeft } from './llama-graph.ts';
import { ortPeftPlan, promptInputNames } from './llama-peft.ts';
import type { Feed } from './session.ts';

const PREFIX = 'language_model.';

export interface MllamaPeftPlan {
  /** Tensors by HF name: the adapted text model's, the checkpoint's vision tower and projector. */
  get: TensorGetter;
  /** Pass to buildMllamaTextGraph and feed on every text run. */
  graph: LlamaGraphPeft;
  feeds: Record<string, Feed>;
  /** What was applied (runner info), as the reference runner labels it. */
  label: string | null;
  /** V2's visual path: per image, prompt feeds that replace those in `feeds`. */
  visualFeeds: ((states: Float32Array, realTokens: number) => Record<string, Feed>) | null;
}

/** The `--peft` method of an argument, as ortPeftPlanFor reads it (official .pth: LLaMA-Adapter). */
function methodOf(peftArg: string): string {
  return officialReleaseArg(peftArg) ? 'adapter' : parsePeft(peftArg).method;
}

/**
 * Applies `peftArg` to `base` (the checkpoint's reference text model) and returns what the ORT mllama
 * graphs need to run the adapted model as the reference does. `checkpoint` gives the vision tensors.
 */
export function mllamaPeftPlan(checkpoint: Pick<MllamaReference, 'get'>, base: ReferenceModel, peftArg: string, options: { init?: AdapterInit; seed?: number } = {}): MllamaPeftPlan {
  if (!base.crossAttention) throw new InputError('mllama --peft: the model has no cross-attention layers (not an mllama checkpoint)');
  const method = methodOf(peftArg);
  if (method === 'excitor') throw new InputError(`--peft ${peftArg}: LLaMA-Excitor is not supported on mllama (supported: lora, qlora, adapter-v1, adapter-v2, or an HF PEFT LORA / ADAPTION_PROMPT adapter directory)`);
  // The reference runner's own application (runners/reference-runner.ts ReferenceRunner.open); tests
  // draw random spec weights with `init`.
  const adapted = applyPeftToReference(base, peftArg, { mode: 'unmerged', init: options.init ?? 'zero', seed: options.seed ?? 0 });
  const peft = adapted.peft;
  // Cross-attention LoRA is merged in float32 (no branch there); ortPeftPlan refuses merged modules
  // over an NF4 base, but those weights are not the NF4 round trip, so it keeps them fp32 anyway.
  const crossKeys = new Set([...referenceModules(adapted).values()].filter((s) => s.cross).map((s) => s.key));
  // ortPeftPlan also lists the weights under the text LLaMA's tensor names (modelWeightSource), which
  // has no mllama layout; those are not used here (`get` below serves them), so it is shown the model
  // as a plain LLaMA: the modules, adapter state and shapes it reads are the same.
  const planned: ReferenceModel = {
    ...adapted,
    arch: { ...adapted.arch, modelType: 'llama' },
    ...(peft ? { peft: { ...peft, merged: new Map([...peft.merged].filter(([k]) => !crossKeys.has(k))) } satisfies ReferencePeft } : {}),
  };
  const plan = ortPeftPlan(planned, method === 'qlora' ? { nf4Base: base } : {});

  // Text tensors: the adapted modules by name, then the cross-attention layers' own tensors (norms,
  // gates, q/k norms, through the adapted getter that holds merged weights), then the checkpoint.
  const modules = new Map([...referenceModules(adapted).values()].map((s) => [`${PREFIX}${s.key}.weight`, s]));
  const cross = adapted.crossAttention!;
  const crossLayer = new RegExp(`^${PREFIX.replace('.', '\\.')}model\\.layers\\.(${cross.layers.join('|')})\\.`);
  const get: TensorGetter = (name) => {
    const slot = modules.get(name);
    if (slot) return slot.get();
    if (crossLayer.test(name)) return cross.get(name);
    if (name.startsWith(PREFIX)) throw new InputError(`mllama --peft: adapted text model has no tensor "${name}"`);
    return checkpoint.get(name);
  };
  const visual = peft?.visual ?? null;
  return {
    get,
    graph: plan.peft.graph,
    feeds: plan.peft.feeds,
    label: peft?.label ?? null,
    visualFeeds: visual && peft ? (states, realTokens) => visualPromptFeeds(visual, peft, adapted.text.hiddenSize, states, realTokens) : null,
  };
}

/**
 * withVisualQuery (runners/peft/visual.ts) as feeds: each visual layer's prompt becomes
 * adapter_query + forward_visual(features), rounded to float32, from the image's real-tile states.
 */
function visualPromptFeeds(visual: VisualAdapter, peft: ReferencePeft, hidden: number, states: Float32Array, realTokens: number): Record<string, Feed> {
  const features = Array.from({ length: realTokens }, (_, i) => states.subarray(i * hidden, (i + 1) * hidden));
  const query = forwardVisual(visual, features, hidden);
  const feeds: Record<string, Feed> = {};
  for (const layer of visual.layers) {
    const p = peft.adaptionPrompts.get(layer)!;
    feeds[promptInputNames(layer).prompt] = { data: Float32Array.from(p.prompt, (x, i) => x + query[Math.floor(i / hidden)]![i % hidden]!), dims: [p.len, hidden] };
  }
  return feeds;
}
