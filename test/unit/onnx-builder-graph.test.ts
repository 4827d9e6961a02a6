// The ONNX graph builder: encodes models ORT loads, with contrib-domain opsets and clear errors.
import { describe, expect, it } from 'vitest';
import { decodeModel, OnnxGraphBuilder } from '../../runners/ort/onnx-builder.ts';
import { runOnce } from '../../runners/ort/session.ts';

describe('OnnxGraphBuilder', () => {
  it('round-trips through protobuf with inputs, initializers, nodes and opset imports', () => {
    const g = new OnnxGraphBuilder('t');
    g.input('x', 'float32', ['batch', 3]);
    g.initializer('w', Float32Array.of(1, 2, 3), [3]);
    g.node('Mul', ['x', 'w'], ['y'], { attrs: { foo: 2, bar: { float: 0.5 }, names: ['a', 'b'] } });
    g.output('y', 'float32', ['batch', 3]);
    const m = decodeModel(g.toBytes());
    expect(m.graph?.input?.[0]?.name).toBe('x');
    expect(m.graph?.input?.[0]?.type?.tensorType?.shape?.dim?.[0]?.dimParam).toBe('batch');
    expect(m.graph?.initializer?.[0]?.dims?.map(Number)).toEqual([3]);
    expect(m.graph?.node?.[0]?.attribute?.map((a) => a.name)).toEqual(['foo', 'bar', 'names']);
    const domains = m.opsetImport?.map((o) => `${o.domain}:${Number(o.version)}`);
    expect(domains).toEqual([':21', 'com.microsoft:1']);
  });

  it('builds a graph ORT runs: y = x * w + 1', async () => {
    const g = new OnnxGraphBuilder('affine');
    g.input('x', 'float32', [2]);
    g.initializer('w', Float32Array.of(2, 3), [2]);
    g.initializer('one', Float32Array.of(1), []);
    g.node('Add', [g.op('Mul', ['x', 'w']), 'one'], ['y']);
    g.output('y', 'float32', [2]);
    const out = await runOnce(g.toBytes(), { x: { data: Float32Array.of(5, 7), dims: [2] } });
    // 5*2+1 = 11, 7*3+1 = 22
    expect(Array.from(out.y?.data as Float32Array)).toEqual([11, 22]);
  });

  it('runs a com.microsoft contrib op (FastGelu) through its opset import', async () => {
    const g = new OnnxGraphBuilder('contrib');
    g.input('x', 'float32', [1]);
    g.node('FastGelu', ['x'], ['y'], { domain: 'com.microsoft' });
    g.output('y', 'float32', [1]);
    const out = await runOnce(g.toBytes(), { x: { data: Float32Array.of(0), dims: [1] } });
    expect((out.y?.data as Float32Array)[0]).toBe(0); // gelu(0) = 0
  });

  it('names the value defined twice, the missing opset and a non-integer int attribute', () => {
    const g = new OnnxGraphBuilder('bad');
    g.input('x', 'float32', [1]);
    expect(() => g.input('x', 'float32', [1])).toThrow(/"x" is defined twice/);
    expect(() => g.node('Foo', ['x'], 1, { domain: 'ai.custom' })).toThrow(/domain "ai.custom" has no opset import/);
    expect(() => g.node('Bar', ['x'], 1, { attrs: { alpha: 0.5 } })).toThrow(/pass \{ float: 0.5 \}/);
    expect(() => g.initializer('w', new Float32Array(3), [2, 2])).toThrow(/hold 4 elements but data has 3/);
  });
});
