// The building blocks of the reference forward on hand-computed numbers, and RoPE inv_freq against
// formulas written out independently here (Meta's llama-models `apply_scaling`, RoFormer eq. 15).
import { describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../runners/arch.ts';
import { zooEntry } from '../../harness/zoo.ts';
import { logSoftmax, rmsNorm, silu, softmax } from '../../runners/reference-ops.ts';
import { defaultInvFreq, ropeInvFreq, rotateHalf, rotateInterleaved } from '../../runners/reference-rope.ts';
import { attentionTemperature, canAttend, routeToken } from '../../runners/reference.ts';

const textOf = (id: string) => parseModelConfig(zooEntry(id)!.config, id).text;

describe('RMSNorm, softmax, SiLU', () => {
  it('RMSNorm of [3, 4] with gain [1, 2]', () => {
    // mean(x²) = (9 + 16) / 2 = 12.5, rms = sqrt(12.5) = 3.5355339059327378 (eps 0 effectively: 1e-12).
    const y = rmsNorm([3, 4], [1, 2], 1e-12);
    expect(y[0]).toBeCloseTo(3 / 3.5355339059327378, 12);
    expect(y[1]).toBeCloseTo((2 * 4) / 3.5355339059327378, 12);
  });

  it('softmax and log-softmax of [1, 2, 3]', () => {
    // e^1 + e^2 + e^3 = 2.718281828 + 7.389056099 + 20.085536923 = 30.192874850;
    // p = [0.0900305732, 0.2447284711, 0.6652409558].
    const p = softmax([1, 2, 3]);
    expect(Array.from(p).map((x) => +x.toFixed(10))).toEqual([0.0900305732, 0.2447284711, 0.6652409558]);
    // log p[2] = 3 - ln(30.192874850) = 3 - 3.4076059644 = -0.4076059644
    expect(logSoftmax([1, 2, 3])[2]).toBeCloseTo(-0.4076059644, 9);
    // Shifting by a large constant changes nothing (max is subtracted before exp).
    expect(softmax([1001, 1002, 1003])[0]).toBeCloseTo(0.0900305732, 10);
  });

  it('SiLU(1) = 1 / (1 + e^-1)', () => {
    // 1 / (1 + 0.36787944117) = 0.7310585786300049
    expect(silu(1)).toBeCloseTo(0.7310585786300049, 15);
  });
});

describe('RoPE inv_freq', () => {
  it('default: 1 / theta^(2i/d) (RoFormer), Llama 2 7B head_dim 128, theta 10000', () => {
    const inv = defaultInvFreq(10000, 128);
    expect(inv[0]).toBe(1);
    // i = 32: 10000^(-0.5) = 0.01
    expect(inv[32]).toBeCloseTo(0.01, 15);
  });

  it('llama3 scaling of Llama 3.1 8B equals Meta llama-models apply_scaling, written out here', () => {
    // meta-llama/llama-models, models/llama3/reference_impl/model.py `apply_scaling`:
    // scale_factor 8, low_freq_factor 1, high_freq_factor 4, old_context_len 8192.
    const theta = 500000;
    const dim = 128;
    const expected: number[] = [];
    for (let i = 0; i < dim; i += 2) {
      const freq = 1 / theta ** (i / dim);
      const wavelen = (2 * Math.PI) / freq;
      const lowFreqWavelen = 8192 / 1;
      const highFreqWavelen = 8192 / 4;
      if (wavelen < highFreqWavelen) expected.push(freq);
      else if (wavelen > lowFreqWavelen) expected.push(freq / 8);
      else {
        const smooth = (8192 / wavelen - 1) / (4 - 1);
        expected.push(((1 - smooth) * freq) / 8 + smooth * freq);
      }
    }
    const inv = ropeInvFreq(textOf('llama-3.1-8b'), 16);
    inv.forEach((f, i) => expect(f).toBeCloseTo(expected[i]!, 18));
    // Spot values from Python (math module, same formula): i=20 unchanged (wavelen 379.4),
    // i=30 smoothed (wavelen 2948.3), i=63 divided by 8 (wavelen 2.56e6).
    expect(inv[20]).toBeCloseTo(0.016560440080994446, 15);
    expect(inv[30]).toBeCloseTo(0.0013718935677611381, 15);
    expect(inv[63]! / 3.068925988914511e-7).toBeCloseTo(1, 12);
  });

  it('linear divides by factor; dynamic changes theta only past max_position_embeddings', () => {
    const base = { ...textOf('tiny-llama-2'), ropeTheta: 10000, headDim: 16, maxPositionEmbeddings: 32 };
    const plain = defaultInvFreq(10000, 16);
    const linear = ropeInvFreq({ ...base, ropeScaling: { ropeType: 'linear', factor: 4 } }, 8);
    linear.forEach((f, i) => expect(f).toBeCloseTo(plain[i]! / 4, 15));
    const dynamic = { ...base, ropeScaling: { ropeType: 'dynamic' as const, factor: 2 } };
    expect(Array.from(ropeInvFreq(dynamic, 32))).toEqual(Array.from(plain));
    // L = 64 > 32: theta' = 10000 * (2 * 64 / 32 - 1)^(16 / 14) = 10000 * 3^(8/7)
    // (transformers _compute_dynamic_ntk_parameters).
    const theta = 10000 * 3 ** (16 / 14);
    expect(ropeInvFreq(dynamic, 64)[1]).toBeCloseTo(1 / theta ** (2 / 16), 15);
  });

  it('rotate_half pairs i with i + d/2; Llama 4 rotates adjacent pairs', () => {
    // angle = pos * inv_freq = 1 * 1 for the first pair: (1, 0) -> (cos 1, sin 1).
    const inv = Float64Array.from([1, 0]);
    const half = Float64Array.from([1, 5, 0, 7]);
    rotateHalf(half, 0, 4, 1, inv);
    expect([half[0], half[2]]).toEqual([Math.cos(1), Math.sin(1)]);
    expect([half[1], half[3]]).toEqual([5, 7]); // inv_freq 0: unrotated
    const pairs = Float64Array.from([1, 0, 5, 7]);
    rotateInterleaved(pairs, 0, 4, 1, inv);
    expect(Array.from(pairs)).toEqual([Math.cos(1), Math.sin(1), 5, 7]);
  });
});

describe('Llama 4 attention and routing rules', () => {
  const t4 = textOf('tiny-llama-4');

  it('chunked attention on RoPE layers, global causal attention on NoPE layers', () => {
    // tiny-llama-4: attention_chunk_size 16, no_rope_layers [1, 1, 1, 0] (layer 3 is NoPE).
    expect(canAttend(t4, 0, 16, 15)).toBe(false); // different chunks
    expect(canAttend(t4, 0, 17, 16)).toBe(true);
    expect(canAttend(t4, 0, 15, 0)).toBe(true);
    expect(canAttend(t4, 3, 40, 0)).toBe(true);
    expect(canAttend(t4, 3, 3, 4)).toBe(false); // causal
    expect(canAttend(textOf('tiny-llama-3'), 0, 40, 0)).toBe(true);
  });

  it('temperature tuning: 1 + attn_scale * log(1 + floor((p + 1) / floor_scale))', () => {
    // floor_scale 8, attn_scale 0.1: p = 6 -> floor(7/8) = 0 -> 1; p = 7 -> floor(1) -> 1 + 0.1 ln 2.
    expect(attentionTemperature(6, 8, 0.1)).toBe(1);
    expect(attentionTemperature(7, 8, 0.1)).toBeCloseTo(1 + 0.1 * Math.LN2, 15);
  });

  it('the router picks the top-1 expert by sigmoid score', () => {
    // router rows · x = [0.5, 2, -1, 1.5] -> expert 1; score sigmoid(2) = 0.8807970779778823.
    const router = Float64Array.from([0.5, 0, 2, 0, -1, 0, 1.5, 0]);
    const r = routeToken(router, [1, 0], 4, 2, 1);
    expect(r.experts).toEqual([1]);
    expect(r.scores[0]).toBeCloseTo(0.8807970779778823, 15);
    expect(routeToken(router, [1, 0], 4, 2, 2).experts).toEqual([1, 3]);
  });
});
