// NF4 against bitsandbytes' own figures: the code book, the error statistics its test suite pins
// (tests/test_functional.py TestQuantize4BitFunctional), the nibble order and padding of its packing
// (backends/default/ops.py quantize_4bit), and the error bound the code book implies.
import { describe, expect, it } from 'vitest';
import { ABSMAX_BLOCK, createDynamicMap, dequantizeAbsmax, doubleQuantizeAbsmax, NF4_CODE, nf4Dequantize, nf4Quantize } from '../../runners/quant/nf4.ts';
import { nf4RoundTrip } from '../../runners/quant/nf4-model.ts';
import { seededNormal } from '../../runners/tiny.ts';

// bitsandbytes/functional.py get_4bit_type('nf4') (create_normal_map(offset=0.9677083, use_extra_value=True)).
const BNB_NF4 = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
  -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
  0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0];

// 1024 x 1024 standard normal values, as bitsandbytes' test_4bit_quant draws (torch.randn(1024, 1024)).
const A = seededNormal(20230523, 1024 * 1024, 1);

describe('NF4 as bitsandbytes publishes it', () => {
  it('the code book is get_4bit_type("nf4")', () => {
    expect(Array.from(NF4_CODE)).toEqual(BNB_NF4.map(Math.fround));
  });

  it('mean absolute and relative error on N(0, 1) at blocksize 64 match test_4bit_quant', () => {
    // tests/test_functional.py test_4bit_quant, nf4, blocksize 64: err (mean, std) = (0.072798, 0.000074),
    // rel_err = (0.203339, 0.000340) over 200 samples; the test allows mean + 7 std. The std is for 2^20
    // values, our sample size, so the same 7-std band applies on both sides.
    const t = nf4Quantize(A, 64);
    const d = nf4Dequantize(t);
    let err = 0;
    let rel = 0;
    for (let i = 0; i < A.length; i++) {
      const e = Math.abs(A[i]! - d[i]!);
      err += e;
      rel += e / (Math.abs(A[i]!) + 1e-8);
    }
    err /= A.length;
    rel /= A.length;
    expect(Math.abs(err - 0.072798)).toBeLessThan(7 * 0.000074);
    expect(Math.abs(rel - 0.203339)).toBeLessThan(7 * 0.00034);
  });

  it('with double-quantized statistics the error stays under test_4bit_compressed_stats bounds', () => {
    // test_4bit_compressed_stats: err.mean() < 0.11 and relerr.mean() < 0.28 with compress_statistics=True.
    const d = nf4RoundTrip(A, 64);
    let err = 0;
    let rel = 0;
    for (let i = 0; i < A.length; i++) {
      const e = Math.abs(A[i]! - d[i]!);
      err += e;
      rel += e / (Math.abs(A[i]!) + 1e-15);
    }
    expect(err / A.length).toBeLessThan(0.11);
    expect(rel / A.length).toBeLessThan(0.28);
  });

  it('every element is within half the largest code-book gap times its block absmax', () => {
    // Largest gap of the code book: -0.6961928009986877 - (-1) = 0.3038071990013123; half: 0.15190359950065613.
    const halfGap = 0.15190359950065613;
    const x = A.subarray(0, 64 * 512);
    const t = nf4Quantize(x, 64);
    const d = nf4Dequantize(t);
    let worst = 0;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - d[i]!) / t.absmax[i >> 6]!);
    expect(worst).toBeLessThanOrEqual(halfGap * (1 + 1e-6));
    expect(worst).toBeGreaterThan(0.1); // the bound is nearly reached on 32K normal values
  });

  it('packs two codes a byte, first element in the high nibble, an odd tail padded with code 7 (zero)', () => {
    // backends/default/ops.py quantize_4bit: packed = (q[::2] << 4) | q[1::2]; odd length pads a 0.0,
    // which bucketizes to code 7. Values (block absmax 1) are the code-book entries 15, 0, 7, 9, 3, 14.
    const t = nf4Quantize(Float32Array.of(1, -1, 0, 0.16093020141124725, -0.39491748809814453, 0.7229568362236023, -0.5250730514526367), 64);
    expect(Array.from(t.packed)).toEqual([0xf0, 0x79, 0x3e, 0x27]);
  });

  it('double quantization: absmax - mean, blocks of 256, error within half a dynamic-map step', () => {
    // functional.py quantize_4bit(compress_statistics=True): offset = absmax.mean();
    // quantize_blockwise(absmax - offset, blocksize=256) with create_dynamic_map(signed=True).
    const absmax = nf4Quantize(A, 64).absmax; // 16384 blocks -> 64 groups of 256
    const dq = doubleQuantizeAbsmax(absmax);
    expect(dq.blockSize).toBe(ABSMAX_BLOCK);
    expect(dq.absmax2.length).toBe(64);
    const map = createDynamicMap();
    let maxGap = 0;
    for (let i = 1; i < map.length; i++) maxGap = Math.max(maxGap, map[i]! - map[i - 1]!);
    const back = dequantizeAbsmax(dq);
    for (let i = 0; i < absmax.length; i++) {
      expect(Math.abs(back[i]! - absmax[i]!)).toBeLessThanOrEqual((maxGap / 2) * dq.absmax2[Math.floor(i / 256)]! * (1 + 1e-6) + 1e-7);
    }
  });
});
