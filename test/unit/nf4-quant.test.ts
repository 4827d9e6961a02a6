// bitsandbytes-exact NF4: code book, decision tree, nibble order, double quantization.
import { describe, expect, it } from 'vitest';
import { createDynamicMap, doubleQuantizeAbsmax, dequantizeAbsmax, nearestCode, NF4_CODE, nf4CodeAt, nf4Dequantize, nf4Quantize, nf4QuantizeDouble, nf4QuantizeValue } from '../../runners/quant/nf4.ts';

describe('NF4 code book', () => {
  it('is bitsandbytes get_4bit_type("nf4") exactly, as float32', () => {
    // bitsandbytes/functional.py get_4bit_type('nf4'); identical to ORT's nf4_qaunt_map in
    // contrib_ops/cpu/quantization/blockwise_quant_block_bnb4.h.
    const bnb = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
      -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
      0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0];
    expect(Array.from(NF4_CODE)).toEqual(bnb.map(Math.fround));
  });

  it('the decision tree maps every code value to its own index', () => {
    for (let c = 0; c < 16; c++) expect(nf4QuantizeValue(NF4_CODE[c] as number)).toBe(c);
  });

  it('a value exactly on a threshold takes the lower code (strict > in dQuantizeNF4)', () => {
    // 0.03979014977812767 is dQuantizeNF4's first threshold (midpoint of codes 7 and 8).
    expect(nf4QuantizeValue(Math.fround(0.03979014977812767))).toBe(7);
    expect(nf4QuantizeValue(Math.fround(0.0398))).toBe(8);
  });

  it('quantizes to the nearest code away from thresholds', () => {
    for (let i = 0; i < 200; i++) {
      const x = -1 + i / 100;
      const q = nf4QuantizeValue(Math.fround(x));
      const nearest = nearestCode(NF4_CODE, Math.fround(x));
      expect(Math.abs((NF4_CODE[q] as number) - x)).toBeCloseTo(Math.abs((NF4_CODE[nearest] as number) - x), 6);
    }
  });
});

describe('NF4 blockwise quantization', () => {
  it('packs the first element of each pair in the HIGH nibble', () => {
    // kQuantizeBlockwise / QuantizeBlockBnb4 write (q0 << 4) | q1: [1, -1] -> codes 15, 0 -> 0xF0.
    const t = nf4Quantize(Float32Array.of(1, -1), 64);
    expect(t.packed[0]).toBe(0xf0);
    expect(t.absmax[0]).toBe(1);
    expect(nf4CodeAt(t.packed, 0)).toBe(15);
    expect(nf4CodeAt(t.packed, 1)).toBe(0);
  });

  it('scales each 64-element block by its own absmax', () => {
    const v = new Float32Array(128);
    v[0] = 2; // block 0 absmax 2
    v[64] = -0.5; // block 1 absmax 0.5
    v[65] = 0.25;
    const t = nf4Quantize(v, 64);
    expect(Array.from(t.absmax)).toEqual([2, 0.5]);
    const d = nf4Dequantize(t);
    expect(d[0]).toBe(2);
    expect(d[64]).toBe(-0.5);
    // 0.25 / 0.5 = 0.5 is below dQuantizeNF4's 0.5016634166240692 threshold, so code 12
    // (0.44070982933044434, the nearer one), times the block absmax 0.5.
    expect(d[65]).toBe(Math.fround(Math.fround(0.44070982933044434) * 0.5));
    expect(d[1]).toBe(0); // zeros stay exactly zero (code 7 is 0.0)
  });

  it('dequantized values are code * absmax for every element', () => {
    const v = Float32Array.from({ length: 256 }, (_, i) => Math.sin(i * 0.37) * (1 + (i % 7)));
    const t = nf4Quantize(v);
    const d = nf4Dequantize(t);
    for (let i = 0; i < v.length; i++) {
      expect(d[i]).toBe(Math.fround((NF4_CODE[nf4CodeAt(t.packed, i)] as number) * (t.absmax[i >> 6] as number)));
    }
  });
});

describe('double quantization of absmax', () => {
  it('uses bitsandbytes create_dynamic_map(signed=True): 256 sorted values from -0.99296875 to 1', () => {
    const code = createDynamicMap();
    expect(code.length).toBe(256);
    for (let i = 1; i < 256; i++) expect(code[i]).toBeGreaterThan(code[i - 1] as number);
    expect(code[255]).toBe(1);
    expect(code[127]).toBe(0);
    // Largest non-one magnitude: mean of the last two of linspace(0.1, 1, 65) in decade 10^0,
    // (0.9859375 + 1) / 2 = 0.99296875, which float32 rounds to 0.992968738079071.
    expect(code[0]).toBeCloseTo(-0.99296875, 6);
    // Smallest magnitude: 1e-6 * mean(linspace(0.1, 1, 2)) = 1e-6 * 0.55.
    expect(code[128]).toBeCloseTo(5.5e-7, 12);
  });

  it('offset is the absmax mean and blocks are 256 absmax values', () => {
    const absmax = Float32Array.from({ length: 600 }, (_, i) => 0.05 + 0.01 * Math.sin(i));
    const d = doubleQuantizeAbsmax(absmax);
    expect(d.absmax2.length).toBe(3); // ceil(600 / 256)
    expect(d.offset).toBeCloseTo(absmax.reduce((a, b) => a + b, 0) / 600, 7);
    const back = dequantizeAbsmax(d);
    // 8-bit dynamic code: relative step about 1/64 at the top decade (create_dynamic_map),
    // so residuals of ~0.01 come back within 0.01 * 2/64.
    for (let i = 0; i < absmax.length; i++) expect(Math.abs((back[i] as number) - (absmax[i] as number))).toBeLessThan(0.01 * 2 / 64 + 1e-7);
  });

  it('nf4QuantizeDouble keeps the packed codes and swaps in the double-dequantized absmax', () => {
    const v = Float32Array.from({ length: 64 * 300 }, (_, i) => Math.cos(i * 0.11));
    const single = nf4Quantize(v);
    const { tensor } = nf4QuantizeDouble(v);
    expect(tensor.packed).toEqual(single.packed);
    for (let b = 0; b < 300; b++) expect(tensor.absmax[b]).toBeCloseTo(single.absmax[b] as number, 2);
  });
});
