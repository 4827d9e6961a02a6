// The official LLaMA-Adapter release layouts read from .pth files written byte by byte, applied to the
// reference and to the ORT graph. V1 (alpaca_finetuning_v1/extract_adapter_from_checkpoint.py):
// `adapter_query.weight` [len * layers, dim] + `layers.N.attention.gate` [1, heads, 1, 1] on every
// layer. V2 (llama_adapter_v2_chat65b/llama/model.py): plus wX_bias / wX_scale and the norms.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parsePeftSpec, type AdapterV1Spec, type AdapterV2Spec } from '../../harness/peft/index.ts';
import { InputError } from '../../results/errors.ts';
import { readCheckpointDir } from '../../runners/hf/checkpoint.ts';
import { OrtLlamaModel, ortTokenLogprobs } from '../../runners/ort/llama-model.ts';
import { ortPeftPlanFor } from '../../runners/ort/llama-peft.ts';
import { applyAdaptionPrompt } from '../../runners/peft/adaption-prompt.ts';
import { applyAdapterV2, officialAdapterV2Name, randomAdapterV2Tensors } from '../../runners/peft/adapter-v2.ts';
import { applyPeftToReference } from '../../runners/peft/index.ts';
import { memoryAdapterTensors, PEFT_KEY_PREFIX } from '../../runners/peft/lora.ts';
import { loadReferenceFromCheckpoint } from '../../runners/reference-weights.ts';
import { referenceTokenLogprobs } from '../../runners/reference.ts';
import { seededNormal } from '../../runners/tiny.ts';
import { ensureTinyCheckpoint } from '../../runners/tiny.ts';
import { pickleDict, tensor, writePthFile } from './torch-pickle.ts';

const tmp = mkdtempSync(join(tmpdir(), 'peft-v1-official-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const checkpoint = readCheckpointDir(ensureTinyCheckpoint('tiny-llama-3', { env: { LLAMA_EVAL_CACHE: join(tmp, 'cache') } }), 'tiny-llama-3', 'tiny');
const base = loadReferenceFromCheckpoint(checkpoint);
const { hiddenSize: h, numHeads } = base.text;
const n = base.layers.length;
const LAYERS = 2;
const LEN = 3;
const ids = [1, 17, 99, 5, 300, 42, 7, 1000];

const query = seededNormal(11, LAYERS * LEN * h, 1);
// Trained gates on the adapted layers, zeros elsewhere (the release stores all layers' gates).
const gates = Array.from({ length: n }, (_, i) => (i >= n - LAYERS ? seededNormal(20 + i, numHeads, 0.5) : new Float32Array(numHeads)));

/** Writes a release-layout .pth; `edit` may rename, reshape or add entries. */
function writeRelease(name: string, edit: (entries: [string, number[]][], storages: Record<string, Uint8Array>) => void = () => {}): string {
  const storages: Record<string, Uint8Array> = { q: new Uint8Array(query.slice().buffer) };
  const entries: [string, number[]][] = [['adapter_query.weight', tensor('FloatStorage', 'q', query.length, 0, [LAYERS * LEN, h], [h, 1])]];
  gates.forEach((g, i) => {
    storages[`g${i}`] = new Uint8Array(g.slice().buffer);
    entries.push([`layers.${i}.attention.gate`, tensor('FloatStorage', `g${i}`, numHeads, 0, [1, numHeads, 1, 1], [numHeads, 1, 1, 1])]);
  });
  edit(entries, storages);
  return writePthFile(join(tmp, name), pickleDict(entries), storages);
}

describe('official LLaMA-Adapter V1 release checkpoints', () => {
  const path = writeRelease('adapter.pth');

  it('equals the same prompts and per-head gates given in HF PEFT layout', () => {
    const official = applyPeftToReference(base, path, { officialLayers: LAYERS });
    // The same numbers renamed into PEFT's ADAPTION_PROMPT layout: layer n-L+i takes query rows
    // [i*len, (i+1)*len) (official Transformer.forward: adapter_query.weight.reshape(layers, len, dim)[i]).
    const spec = parsePeftSpec(`adapter-v1:layers=${LAYERS},len=${LEN}`) as AdapterV1Spec;
    const peftTensors = Array.from({ length: LAYERS }, (_, i) => {
      const layer = n - LAYERS + i;
      const attn = `${PEFT_KEY_PREFIX}model.layers.${layer}.self_attn`;
      return [
        { name: `${attn}.adaption_prompt`, shape: [1, LEN, h], data: query.slice(i * LEN * h, (i + 1) * LEN * h) },
        { name: `${attn}.adaption_gate`, shape: [1, numHeads, 1, 1], data: gates[layer]! },
      ];
    }).flat();
    const viaPeft = applyAdaptionPrompt(base, spec, memoryAdapterTensors('peft', peftTensors));
    const got = referenceTokenLogprobs(official, ids);
    const want = referenceTokenLogprobs(viaPeft, ids);
    const plain = referenceTokenLogprobs(base, ids);
    // The official release joins the prompt before wo, PEFT after o_proj: equal for a bias-free o_proj.
    got.forEach((x, i) => (x === null ? expect(want[i]).toBeNull() : expect(x).toBeCloseTo(want[i]!, 9)));
    expect(Math.max(...got.slice(1).map((x, i) => Math.abs(x! - plain[i + 1]!)))).toBeGreaterThan(1e-3);
  });

  it('runs in the ORT graph (prompt joined before o_proj) within 1e-4 of the reference', async () => {
    const plan = ortPeftPlanFor(base, path, { officialLayers: LAYERS });
    const model = await OrtLlamaModel.create(checkpoint.arch, checkpoint.config, plan.weights, { intraOpThreads: 1, peft: plan.peft });
    try {
      const got = await ortTokenLogprobs(model, ids);
      const want = referenceTokenLogprobs(plan.adapted, ids);
      got.forEach((x, i) => (x === null ? expect(want[i]).toBeNull() : expect(Math.abs(x - want[i]!)).toBeLessThanOrEqual(1e-4)));
    } finally {
      await model.close();
    }
  });

  it('rejects checkpoints that do not fit the model, naming the mismatch', () => {
    const apply = (p: string, layers = LAYERS) => () => applyPeftToReference(base, p, { officialLayers: layers });
    expect(apply(path, 30)).toThrow(/adapter_layer 30 does not fit this model's \d+ decoder layers/);
    // 5 prompt rows cannot be split over 2 layers.
    const odd = writeRelease('odd.pth', (e) => (e[0]![1] = tensor('FloatStorage', 'q', query.length, 0, [5, h], [h, 1])));
    expect(apply(odd)).toThrow(/5 rows, not a multiple of adapter_layer 2/);
    expect(apply(odd)).toThrow(InputError);
    const wide = writeRelease('wide.pth', (e) => (e[0]![1] = tensor('FloatStorage', 'q', query.length, 0, [LEN, 2 * h], [2 * h, 1])));
    expect(apply(wide)).toThrow(/another hidden size/);
    const deep = writeRelease('deep.pth', (e) => e.push(['layers.99.attention.gate', tensor('FloatStorage', 'g0', numHeads, 0, [1, numHeads, 1, 1], [numHeads, 1, 1, 1])]));
    expect(apply(deep)).toThrow(/names layer 99, but the model has \d+ decoder layers/);
    const heads = writeRelease('heads.pth', (e) => (e[1]![1] = tensor('FloatStorage', 'g0', numHeads, 0, [1, numHeads / 2, 1, 1], [numHeads / 2, 1, 1, 1])));
    expect(apply(heads)).toThrow(/another head count/);
    const extra = writeRelease('extra.pth', (e) => e.push(['tok_embeddings.weight', tensor('FloatStorage', 'q', 4, 0, [4], [1])]));
    expect(apply(extra)).toThrow(/"tok_embeddings.weight" is not part of an official LLaMA-Adapter V1 checkpoint/);
    const noQuery = writeRelease('noquery.pth', (e) => e.shift());
    expect(apply(noQuery)).toThrow(/no "adapter_query.weight"/);
  });
});

describe('official LLaMA-Adapter V2 release checkpoints', () => {
  const LINEARS = ['attention.wq', 'attention.wk', 'attention.wv', 'attention.wo', 'feed_forward.w1', 'feed_forward.w2', 'feed_forward.w3'];
  // Our V2 tensors (drawn as for `--peft adapter-v2:...`), written under the release's names
  // (llama_adapter_v2_chat65b/llama/model.py: wX_bias, wX_scale, attention_norm, ffn_norm, gate on every layer).
  const spec = parsePeftSpec(`adapter-v2:layers=${LAYERS},len=${LEN}`) as AdapterV2Spec;
  const ours = new Map(randomAdapterV2Tensors(spec, base, 5).map((t) => [t.name, t]));
  const officialNames = [
    'adapter_query.weight',
    ...Array.from({ length: n }, (_, i) => [
      ...LINEARS.flatMap((m) => [`layers.${i}.${m}_bias`, `layers.${i}.${m}_scale`]),
      `layers.${i}.attention_norm.weight`, `layers.${i}.ffn_norm.weight`, `layers.${i}.attention.gate`,
    ]).flat(),
  ];
  const storages: Record<string, Uint8Array> = {};
  const entries: [string, number[]][] = officialNames.map((name, k) => {
    const t = ours.get(officialAdapterV2Name(name)!) ?? { shape: [1, numHeads, 1, 1], data: new Float32Array(numHeads) }; // unused zero gates
    storages[String(k)] = new Uint8Array(t.data.slice().buffer);
    const strides = t.shape.map((_, d) => t.shape.slice(d + 1).reduce((a, b) => a * b, 1));
    return [name, tensor('FloatStorage', String(k), t.data.length, 0, t.shape, strides)];
  });
  const path = writePthFile(join(tmp, 'v2.pth'), pickleDict(entries), storages);

  it('equals the same tensors applied under our names, in the reference and in the ORT graph', async () => {
    const official = applyPeftToReference(base, path, { officialLayers: LAYERS });
    const direct = applyAdapterV2(base, spec, memoryAdapterTensors('v2', [...ours.values()]), 'unmerged');
    const got = referenceTokenLogprobs(official, ids);
    const want = referenceTokenLogprobs(direct, ids);
    expect(got).toEqual(want);
    const plain = referenceTokenLogprobs(base, ids);
    expect(Math.max(...got.slice(1).map((x, i) => Math.abs(x! - plain[i + 1]!)))).toBeGreaterThan(1e-3);
    const plan = ortPeftPlanFor(base, path, { officialLayers: LAYERS });
    const model = await OrtLlamaModel.create(checkpoint.arch, checkpoint.config, plan.weights, { intraOpThreads: 1, peft: plan.peft });
    try {
      (await ortTokenLogprobs(model, ids)).forEach((x, i) => (x === null ? expect(want[i]).toBeNull() : expect(Math.abs(x - want[i]!)).toBeLessThanOrEqual(1e-4)));
    } finally {
      await model.close();
    }
  });

  it('needs the prompt layer count, and rejects tensors the release does not have', () => {
    expect(() => applyPeftToReference(base, path)).toThrow(/layer count is not stored; pass adapter_layer/);
    const odd = writePthFile(join(tmp, 'v2-odd.pth'), pickleDict([...entries, ['layers.0.attention.wq_lora', entries[1]![1]]]), storages);
    expect(() => applyPeftToReference(base, odd, { officialLayers: LAYERS })).toThrow(/"layers.0.attention.wq_lora" is not part of an official LLaMA-Adapter V2 checkpoint/);
  });
});
