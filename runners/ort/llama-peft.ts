// PEFT in the ORT LLaMA graph, without folding anything into the base weights: what the float64
// reference forward does through its PEFT hooks (runners/reference.ts projectorFor, attention), the
// graph does through llama-graph.ts's `peft` hook.
// - LoRA (Hu et al. 2021; HF PEFT lora/layer.py Linear.forward): y = W x + b + scale * B (A x), as a
//   side branch. A, B and scale are graph INPUTS (rank a symbolic dim), so adapters of the same
//   targets share one base session (OrtLlamaModel.setAdapterFeeds).
// - DoRA (PEFT lora/dora.py DoraLinearLayer.forward): y = d * (W x + scale * B A x) + b, with the row
//   scale d = m / ||W + scale B A|| (detached, so computed once on the host) fed as an input.
// - QLoRA (Dettmers et al. 2023): base linears (all nn.Linear but lm_head, runners/quant/nf4-model.ts)
//   as com.microsoft MatMulBnb4 (quant_type 1 = NF4, block 64) on bitsandbytes-packed bytes with the
//   double-quantized absmax dequantized to float32, LoRA on top in fp32.
// - LLaMA-Adapter V2 (official llama_adapter_v2 llama/model.py forward_linear_with_scale_and_bias):
//   module(x * scale) + bias, scale and bias as inputs; norms are plain weights of the model.
// - LLaMA-Adapter V1/V2 adaption prompts (PEFT adaption_prompt AdaptedAttention; official model.py):
//   the prompt through k_proj / v_proj (no RoPE), attended by the final queries with a softmax of
//   its own, times the gate (tanh(gate) for V2, applied on the host), joined before or after o_proj.
import type { ModelArch, TextArch } from '../arch.ts';
import { parsePeft } from '../peft/spec/index.ts';
import { InputError } from '../../results/errors.ts';
import type { AdaptionPrompt, LoraBranch } from '../peft/branch.ts';
import { applyPeftToReference, type ApplyPeftOptions } from '../peft/index.ts';
import { referenceModules } from '../peft/modules.ts';
import { modelWeightSource } from '../peft/tensor-source.ts';
import { nf4QuantizedModules } from '../quant/nf4-model.ts';
import { NF4_BLOCK, NF4_CODE, nf4Dequantize, nf4QuantizeDouble } from '../quant/nf4.ts';
import { isBnbNf4Config, Nf4TensorSource } from '../quant/nf4-checkpoint.ts';
import { QUANT_STATE_SUFFIX, readStoredNf4, streamFloatLinear, type Nf4Packed, type Nf4StreamEvent } from '../quant/nf4-stream.ts';
import { CheckpointWeights } from '../hf/weights.ts';
import { loadReferenceModel, type ReferenceModel, type TensorSource } from '../reference-weights.ts';
import type { AttentionPromptHook, AttentionWeights } from './llama-blocks.ts';
import type { LlamaGraphPeft } from './llama-graph.ts';
import { OrtLlamaModel, type LlamaModelOptions } from './llama-model.ts';
import { GraphOps } from './llama-ops.ts';
import type { OnnxGraphBuilder } from './onnx-builder.ts';
import type { Feed } from './session.ts';

/** Graph input names of one module's adapter tensors (`key`: HF module name). */
export function loraInputNames(key: string): { a: string; b: string; scale: string; dora: string; inputScale: string; bias: string } {
  return {
    a: `${key}.lora_A`,
    b: `${key}.lora_B`,
    scale: `${key}.lora_scale`,
    dora: `${key}.dora_scale`,
    inputScale: `${key}.adapter_v2_scale`,
    bias: `${key}.adapter_v2_bias`,
  };
}

/** Graph input names of one layer's adaption prompt. */
export function promptInputNames(layer: number): { prompt: string; gate: string } {
  const attn = `model.layers.${layer}.self_attn`;
  return { prompt: `${attn}.adaption_prompt`, gate: `${attn}.adaption_gate` };
}

interface ModulePlan {
  inp: number;
  out: number;
  lora: { dora: boolean } | null;
  inputScale: boolean;
  extraBias: boolean;
}

interface Nf4Plan {
  k: number;
  n: number;
  /** The packed codes and absmax, produced when the graph builder reaches the weight (`read` gives its fp32 values). */
  load(read: () => Float32Array): Nf4Packed;
}

/** How the adapter changes the graph; the tensor values live in the feeds. */
interface GraphPlan {
  text: TextArch;
  modules: Map<string, ModulePlan>;
  /** By checkpoint weight name. */
  nf4: Map<string, Nf4Plan>;
  prompts: Map<number, { beforeOProj: boolean }>;
}

class PeftGraphOps extends GraphOps {
  constructor(
    g: OnnxGraphBuilder,
    private readonly plan: GraphPlan,
  ) {
    super(g);
  }

  override linear(x: string, weight: string, bias: string | null): string {
    // Tied models project with embed_tokens, which no other linear reads: that Gemm is lm_head.
    const key = weight === 'model.embed_tokens.weight' ? 'lm_head' : weight.replace(/\.weight$/, '');
    const m = this.plan.modules.get(key);
    const nf4 = this.plan.nf4.get(weight);
    if (!m && !nf4) return super.linear(x, weight, bias);
    const names = loraInputNames(key);
    const xs = m?.inputScale ? this.op('Mul', [x, names.inputScale]) : x;
    let y = nf4
      ? this.g.op('MatMulBnb4', [xs, `${weight}.nf4`, `${weight}.absmax`], { domain: 'com.microsoft', attrs: { K: nf4.k, N: nf4.n, block_size: NF4_BLOCK, quant_type: 1 } })
      : super.linear(xs, weight, null);
    if (m?.lora) {
      const branch = this.op('Mul', [super.linear(super.linear(xs, names.a, null), names.b, null), names.scale]);
      y = this.op('Add', [y, branch]);
      if (m.lora.dora) y = this.op('Mul', [y, names.dora]);
    }
    if (bias) y = this.op('Add', [y, bias]);
    if (m?.extraBias) y = this.op('Add', [y, names.bias]);
    return y;
  }
}

function promptHook(text: TextArch, layer: number, beforeOProj: boolean): AttentionPromptHook {
  const { numHeads, numKvHeads, headDim: d } = text;
  const group = numHeads / numKvHeads;
  const names = promptInputNames(layer);
  return {
    beforeOProj,
    heads(o: GraphOps, q: string, w: AttentionWeights): string {
      // [len, kv*d] -> [1, kv, 1, len, d]: broadcast over batch and the query heads of each kv head.
      const kvHeads = (y: string) => o.unsqueeze(o.transpose(o.reshape(y, [1, -1, numKvHeads, d]), [0, 2, 1, 3]), [2]);
      const keys = kvHeads(o.linear(names.prompt, w.k, w.kBias));
      const values = kvHeads(o.linear(names.prompt, w.v, w.vBias));
      const q5 = o.reshape(q, [0, numKvHeads, group, -1, d]);
      const scores = o.op('Mul', [o.op('MatMul', [q5, o.transpose(keys, [0, 1, 2, 4, 3])]), o.f32(1 / Math.sqrt(d))]);
      const probs = o.op('Softmax', [scores], { axis: -1 });
      const gate = o.reshape(names.gate, [1, numKvHeads, group, 1, 1]);
      const context = o.op('Mul', [o.op('MatMul', [probs, values]), gate]); // [b, kv, group, s, d]
      return o.reshape(o.transpose(o.reshape(context, [0, numHeads, -1, d]), [0, 2, 1, 3]), [-1, numHeads * d]);
    },
  };
}

function graphHooks(plan: GraphPlan): LlamaGraphPeft {
  return {
    createOps(g) {
      for (const [key, m] of plan.modules) {
        const names = loraInputNames(key);
        if (m.lora) {
          g.input(names.a, 'float32', [`${key}.r`, m.inp]);
          g.input(names.b, 'float32', [m.out, `${key}.r`]);
          g.input(names.scale, 'float32', []);
          if (m.lora.dora) g.input(names.dora, 'float32', [m.out]);
        }
        if (m.inputScale) g.input(names.inputScale, 'float32', [m.inp]);
        if (m.extraBias) g.input(names.bias, 'float32', [m.out]);
      }
      for (const layer of plan.prompts.keys()) {
        const names = promptInputNames(layer);
        g.input(names.prompt, 'float32', [`${names.prompt}.len`, plan.text.hiddenSize]);
        g.input(names.gate, 'float32', [plan.text.numHeads]);
      }
      return new PeftGraphOps(g, plan);
    },
    weight(o, name, _shape, read) {
      const nf4 = plan.nf4.get(name);
      if (!nf4) return null;
      const { packed, absmax } = nf4.load(read);
      o.g.initializer(`${name}.nf4`, packed, [packed.length]);
      o.g.initializer(`${name}.absmax`, absmax, [absmax.length]);
      return name;
    },
    prompt: (layer) => {
      const p = plan.prompts.get(layer);
      return p ? promptHook(plan.text, layer, p.beforeOProj) : null;
    },
  };
}

const f32 = (data: Float32Array, dims: readonly number[]): Feed => ({ data, dims });

function loraFeeds(key: string, branch: LoraBranch, feeds: Record<string, Feed>): void {
  const names = loraInputNames(key);
  feeds[names.a] = f32(branch.a, [branch.r, branch.inFeatures]);
  feeds[names.b] = f32(branch.b, [branch.outFeatures, branch.r]);
  feeds[names.scale] = f32(Float32Array.of(branch.scale), []);
  if (branch.doraScale) feeds[names.dora] = f32(Float32Array.from(branch.doraScale), [branch.outFeatures]);
}

function promptFeeds(text: TextArch, layer: number, p: AdaptionPrompt, feeds: Record<string, Feed>): void {
  const names = promptInputNames(layer);
  feeds[names.prompt] = f32(p.prompt, [p.len, text.hiddenSize]);
  // A scalar gate (PEFT) is the same gate on every head; V2 gates enter as tanh(gate).
  const gate = Float32Array.from({ length: text.numHeads }, (_, h) => p.gate[p.gate.length === 1 ? 0 : h]!);
  feeds[names.gate] = f32(p.gateTanh ? gate.map(Math.tanh) : gate, [text.numHeads]);
}

export interface OrtPeftOptions {
  /**
   * QLoRA: the unquantized base model; its quantizable linears go into the graph as NF4 (double
   * quantization, as quantizeReferenceNf4 does to the reference). `adapted` must then have been
   * applied on quantizeReferenceNf4(nf4Base), unmerged.
   */
  nf4Base?: ReferenceModel;
}

export interface OrtPeftPlan {
  /** The base weights (with merged adapters, modules_to_save and V2 norms) for OrtLlamaModel.create. */
  weights: TensorSource;
  /** Pass as LlamaModelOptions.peft. */
  peft: { graph: LlamaGraphPeft; feeds: Record<string, Feed> };
}

/** The graph plan and feeds of `adapted`'s unmerged PEFT state (no NF4 base linears yet). */
function adapterGraphPlan(adapted: ReferenceModel): { plan: GraphPlan; feeds: Record<string, Feed> } {
  const peft = adapted.peft;
  const text = adapted.text;
  const plan: GraphPlan = { text, modules: new Map(), nf4: new Map(), prompts: new Map() };
  const feeds: Record<string, Feed> = {};
  const slots = referenceModules(adapted);
  const moduleOf = (key: string): ModulePlan => {
    let m = plan.modules.get(key);
    if (!m) {
      const slot = slots.get(key);
      if (!slot || slot.kind !== 'linear') throw new InputError(`${peft?.label ?? 'adapter'}: module ${key} is not a Linear of this model; the ORT graph adapts Linear modules only`);
      m = { inp: slot.inp, out: slot.out, lora: null, inputScale: false, extraBias: false };
      plan.modules.set(key, m);
    }
    return m;
  };
  if (peft) {
    for (const [key, branch] of peft.lora) {
      moduleOf(key).lora = { dora: branch.doraScale !== null };
      loraFeeds(key, branch, feeds);
    }
    for (const [key, scale] of peft.inputScale) {
      moduleOf(key).inputScale = true;
      feeds[loraInputNames(key).inputScale] = f32(scale, [scale.length]);
    }
    for (const [key, bias] of peft.extraBias) {
      moduleOf(key).extraBias = true;
      feeds[loraInputNames(key).bias] = f32(bias, [bias.length]);
    }
    for (const [layer, p] of peft.adaptionPrompts) {
      plan.prompts.set(layer, { beforeOProj: p.beforeOProj });
      promptFeeds(text, layer, p, feeds);
    }
  }
  return { plan, feeds };
}

/**
 * The ORT graph changes and feeds that run `adapted` (a model from applyPeftToReference with its
 * PEFT state) exactly as the reference does, unmerged branches included.
 */
export function ortPeftPlan(adapted: ReferenceModel, options: OrtPeftOptions = {}): OrtPeftPlan {
  const peft = adapted.peft;
  const { plan, feeds } = adapterGraphPlan(adapted);
  const slots = referenceModules(adapted);
  if (options.nf4Base) {
    const baseSlots = referenceModules(options.nf4Base);
    for (const key of nf4QuantizedModules(options.nf4Base)) {
      if (peft?.merged.has(key)) throw new InputError(`${peft.label}: ${key} has a merged adapter, which an NF4 base cannot hold; apply QLoRA unmerged`);
      const slot = baseSlots.get(key)!;
      const { tensor } = nf4QuantizeDouble(slot.get());
      // The graph must run the weights the reference runs: a module whose adapted weight is not this
      // NF4 round trip (a modules_to_save copy) stays fp32.
      const adaptedWeight = slots.get(key)!.get();
      const same = nf4Dequantize(tensor).every((x, i) => x === adaptedWeight[i]);
      if (same) plan.nf4.set(`${key}.weight`, { k: slot.inp, n: slot.out, load: () => ({ packed: tensor.packed, absmax: tensor.absmax }) });
    }
  }
  return { weights: modelWeightSource(adapted), peft: { graph: graphHooks(plan), feeds } };
}

/**
 * `--peft` on the ORT graph: applies `peftArg` to the reference `base` unmerged (QLoRA and
 * `quantizeBase` with an NF4 base) and returns the graph plan plus the adapted reference model.
 */
export function ortPeftPlanFor(base: ReferenceModel, peftArg: string, options: Omit<ApplyPeftOptions, 'mode'> = {}): OrtPeftPlan & { adapted: ReferenceModel } {
  const adapted = applyPeftToReference(base, peftArg, { ...options, mode: 'unmerged' });
  // Official .pth releases are LLaMA-Adapter V1 or V2; an NF4 base is asked for by quantizeBase only.
  const method = peftArg.trim() === '' ? null : peftArg.endsWith('.pth') ? 'adapter-v1' : parsePeft(peftArg).method;
  const nf4 = method === 'qlora' || (options.quantizeBase === true && (method === 'lora' || method === 'adapter-v1'));
  return { ...ortPeftPlan(adapted, nf4 ? { nf4Base: base } : {}), adapted };
}

// --- QLoRA streamed from the checkpoint -------------------------------------------------------------

export interface OrtQloraStreamOptions extends Omit<ApplyPeftOptions, 'mode'> {
  /** Watches each base linear as it is loaded (tests count live fp32 linears with it). */
  onNf4?: (event: Nf4StreamEvent) => void;
}

/** A streamed QLoRA plan: the weights to build the graph from (non-NF4 tensors only are read from it). */
export interface OrtQloraStreamPlan extends OrtPeftPlan {
  /** The adapter's label (`qlora unmerged`), or null with no adapter. */
  label: string | null;
  /** Base linears the graph stores as NF4, by checkpoint weight name. */
  nf4Weights: string[];
}

/** Why `peftArg` cannot take the streamed QLoRA path (it needs the base weights), or null when it can. */
export function qloraStreamBlocker(peftArg: string | undefined, options: { quantizeBase?: boolean; nf4Checkpoint: boolean }): string | null {
  if (peftArg === undefined || peftArg.trim() === '') return options.nf4Checkpoint ? null : 'no adapter and a float checkpoint: nothing to quantize';
  if (peftArg.endsWith('.pth')) return 'official LLaMA-Adapter releases are applied to the reference model';
  const spec = parsePeft(peftArg);
  if (spec.method !== 'lora' && spec.method !== 'qlora') return `${spec.method} adapters are applied to the reference model`;
  if (!options.nf4Checkpoint && spec.method === 'lora' && options.quantizeBase !== true) return 'a LoRA adapter on a float base is not QLoRA (pass quantizeBase)';
  if (spec.dora) return 'DoRA normalises by the base weights, which the streamed path never holds whole';
  if (spec.modulesToSave.length > 0) return 'modules_to_save replaces base weights';
  return null;
}

/**
 * QLoRA (or an NF4 checkpoint, with or without a LoRA adapter) without a float model: each base
 * linear is read from `weights` when the graph builder reaches it, quantized to NF4 (float
 * checkpoint) or taken as stored (NF4 checkpoint, `llama-eval quantize --to nf4`), and handed to the
 * graph as MatMulBnb4 initializers; embeddings, norms and lm_head are read as fp32 by the builder. The
 * bytes and the LoRA feeds equal ortPeftPlanFor's (the adapter is drawn from the same seed on a model
 * whose weight arrays are empty: unmerged LoRA without DoRA or modules_to_save reads shapes only).
 * `weights` must stay open until the graph is built.
 */
export function ortQloraPlanStreamed(
  checkpoint: { arch: ModelArch; config: Record<string, unknown> },
  weights: CheckpointWeights,
  peftArg: string | undefined,
  options: OrtQloraStreamOptions = {},
): OrtQloraStreamPlan {
  const nf4Checkpoint = isBnbNf4Config(checkpoint.config);
  const blocker = qloraStreamBlocker(peftArg, { quantizeBase: options.quantizeBase, nf4Checkpoint });
  if (blocker !== null) throw new InputError(`--peft ${peftArg ?? '(none)'}: the streamed QLoRA load does not apply (${blocker}); use ortPeftPlanFor`);
  const empty = new Float32Array(0);
  const shell = loadReferenceModel(checkpoint.arch, checkpoint.config, { has: (name) => weights.has(name), readFloat32: () => empty });
  const adapted = applyPeftToReference(shell, peftArg, { ...options, mode: 'unmerged' });
  const { plan, feeds } = adapterGraphPlan(adapted);
  const nf4Weights: string[] = [];
  const slots = referenceModules(shell);
  for (const key of nf4QuantizedModules(shell)) {
    const name = `${key}.weight`;
    const slot = slots.get(key)!;
    if (nf4Checkpoint) {
      // bitsandbytes stores exactly these modules as 4-bit; anything it left in float stays fp32.
      if (!weights.has(`${name}${QUANT_STATE_SUFFIX}`)) continue;
      plan.nf4.set(name, { k: slot.inp, n: slot.out, load: () => storedForGraph(weights, name, [slot.out, slot.inp], options.onNf4) });
    } else {
      plan.nf4.set(name, { k: slot.inp, n: slot.out, load: (read) => streamFloatLinear(name, read, options.onNf4) });
    }
    nf4Weights.push(name);
  }
  const source: TensorSource = nf4Checkpoint ? new Nf4TensorSource(weights) : weights;
  return { weights: source, peft: { graph: graphHooks(plan), feeds }, label: adapted.peft?.label ?? null, nf4Weights };
}

/** A stored NF4 weight as MatMulBnb4 runs it: ORT's NF4 code book and this graph's block size only. */
function storedForGraph(weights: CheckpointWeights, name: string, shape: readonly number[], onEvent?: (e: Nf4StreamEvent) => void): Nf4Packed {
  const stored = readStoredNf4(weights, name, shape);
  const why = stored.blockSize !== NF4_BLOCK ? `has blocksize ${stored.blockSize}` : stored.quantMap.some((v, i) => v !== NF4_CODE[i]) ? 'has a quant_map other than bitsandbytes\' NF4 code book (FP4?)' : null;
  if (why !== null) throw new InputError(`${weights.dir}: NF4 weight "${name}" ${why}; the graph's MatMulBnb4 runs NF4 with blocksize ${NF4_BLOCK} (re-quantize the float model with llama-eval quantize --to nf4)`);
  onEvent?.({ kind: 'nf4-read', name });
  return { packed: stored.packed, absmax: stored.absmax };
}

/**
 * An OrtLlamaModel on an NF4 base streamed from `checkpoint` (ortQloraPlanStreamed), with external
 * data past 1 GiB as OrtLlamaModel.create decides. The checkpoint's weights are closed on return.
 */
export async function openOrtQloraModel(
  checkpoint: { dir: string; arch: ModelArch; config: Record<string, unknown> },
  peftArg: string | undefined,
  options: OrtQloraStreamOptions & LlamaModelOptions = {},
): Promise<{ model: OrtLlamaModel; label: string | null }> {
  const weights = CheckpointWeights.open(checkpoint.dir);
  try {
    const plan = ortQloraPlanStreamed(checkpoint, weights, peftArg, options);
    // No prepacked copies: lm_head's Gemm would add one of the fp32 (tied) embedding, the largest
    // tensor left, which the Gather keeps too (bench:peft measures what this saves).
    const model = await OrtLlamaModel.create(checkpoint.arch, checkpoint.config, plan.weights, { disablePrepacking: true, ...options, peft: plan.peft });
    return { model, label: plan.label };
  } finally {
    weights.close();
  }
}
