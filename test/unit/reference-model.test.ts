// Properties the reference forward must have on the tiny models, whatever the weights: causality,
// chunked attention, grouped-query attention, MoE routing, tied embeddings.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readCheckpointDir } from '../../runners/hf/checkpoint.ts';
import { linear, rmsNorm, silu } from '../../runners/reference-ops.ts';
import { loadReferenceFromCheckpoint, type ReferenceModel } from '../../runners/reference-weights.ts';
import { moeForward, referenceLogits, referenceTokenLogprobs, routeToken } from '../../runners/reference.ts';
import { ensureTinyCheckpoint } from '../../runners/tiny.ts';

const cache = mkdtempSync(join(tmpdir(), 'reference-model-'));
afterAll(() => rmSync(cache, { recursive: true, force: true }));
const load = (id: string): ReferenceModel =>
  loadReferenceFromCheckpoint(readCheckpointDir(ensureTinyCheckpoint(id, { env: { LLAMA_EVAL_CACHE: cache } }), id, 'tiny'));

const llama4 = load('tiny-llama-4');
const ids = Array.from({ length: 40 }, (_, i) => (i * 37 + 11) % 512);

describe('reference forward', () => {
  it('is causal: the logprob of token i ignores tokens after i', () => {
    const changed = [...ids.slice(0, 20), ...ids.slice(20).map((id) => (id + 101) % 512)];
    const a = referenceTokenLogprobs(llama4, ids);
    const b = referenceTokenLogprobs(llama4, changed);
    expect(b.slice(0, 20)).toEqual(a.slice(0, 20));
    expect(b[20]).not.toEqual(a[20]);
  });

  it('with every layer chunked (no NoPE layer), chunk 2 ignores chunk 1 entirely', () => {
    // attention_chunk_size 16: positions 16..31 form the second chunk.
    const allChunked: ReferenceModel = { ...llama4, text: { ...llama4.text, noRopeLayers: [] } };
    const changed = ids.map((id, i) => (i < 16 ? (id + 5) % 512 : id));
    const a = referenceLogits(allChunked, ids.slice(0, 32));
    const b = referenceLogits(allChunked, changed.slice(0, 32));
    for (let pos = 16; pos < 32; pos++) expect(Array.from(b[pos]!)).toEqual(Array.from(a[pos]!));
    // With the real config, layer 3 is a global NoPE layer, so chunk 2 does see chunk 1.
    expect(Array.from(referenceLogits(llama4, changed.slice(0, 32))[20]!)).not.toEqual(Array.from(referenceLogits(llama4, ids.slice(0, 32))[20]!));
  });

  it('the MoE layer adds exactly one routed expert, fed x * sigmoid score, to the shared expert', () => {
    const t = llama4.text;
    const moe = llama4.layers[1]!.moe!; // tiny-llama-4: interleave_moe_layer_step 2 -> layer 1 is MoE
    const x = rmsNorm(Float64Array.from({ length: t.hiddenSize }, (_, i) => Math.sin(i + 1)), null, 1e-5);
    const { out, routing } = moeForward(x, moe, t);
    expect(routing.experts).toHaveLength(1); // num_experts_per_tok 1
    const e = routing.experts[0]!;
    const logits = linear(moe.router, x, t.moe!.numExperts, t.hiddenSize);
    expect(Math.max(...logits)).toBe(logits[e]);
    expect(routing).toEqual(routeToken(moe.router, x, t.moe!.numExperts, t.hiddenSize, 1));
    // Recompute by hand from the fused [E, H, 2I] / [E, I, H] layout of Llama4TextExperts.
    const h = t.hiddenSize;
    const inter = t.moe!.expertIntermediateSize;
    const s = routing.scores[0]!;
    const shared = moe.shared;
    const sg = linear(shared.gate, x, inter, h);
    const su = linear(shared.up, x, inter, h);
    const expected = linear(shared.down, sg.map((g, j) => silu(g) * su[j]!), h, inter);
    const act: number[] = [];
    for (let j = 0; j < inter; j++) {
      let gate = 0;
      let up = 0;
      for (let i = 0; i < h; i++) {
        gate += x[i]! * s * moe.gateUp[e * h * 2 * inter + i * 2 * inter + j]!;
        up += x[i]! * s * moe.gateUp[e * h * 2 * inter + i * 2 * inter + inter + j]!;
      }
      act.push(silu(gate) * up);
    }
    for (let o = 0; o < h; o++) {
      let sum = expected[o]!;
      for (let j = 0; j < inter; j++) sum += act[j]! * moe.down[e * inter * h + j * h + o]!;
      expect(out[o]).toBeCloseTo(sum, 14);
    }
  });

  it('tied embeddings: tiny-llama-3.2 scores with embed_tokens as lm_head', () => {
    const m = load('tiny-llama-3.2');
    expect(m.text.tieWordEmbeddings).toBe(true);
    expect(m.lmHead).toBe(m.embed);
    const lp = referenceTokenLogprobs(m, [128000, 9906, 1917]);
    expect(lp[0]).toBeNull();
    // Random weights with std 0.02 give nearly uniform predictions: about -ln(128256) = -11.76.
    for (const x of lp.slice(1)) expect(Math.abs(x! + Math.log(128256))).toBeLessThan(1);
  });

  it('GQA: query heads sharing a kv head see the same keys (kv heads 2 of 4 in tiny-llama-2)', () => {
    const m = load('tiny-llama-2');
    expect([m.text.numHeads, m.text.numKvHeads]).toEqual([4, 2]);
    const lp = referenceTokenLogprobs(m, [1, 15043, 3186]);
    expect(lp.slice(1).every((x) => Number.isFinite(x))).toBe(true);
  });
});
