// The one file that imports onnxruntime-node: device selection, thread options, run helpers.
import { describe, expect, it } from 'vitest';
import { InputError } from '../../harness/errors.ts';
import { OnnxGraphBuilder } from '../../runners/ort/onnx-builder.ts';
import { assertDevice, CUDA_INSTALL_COMMAND, cudaAvailable, OrtSession, ortVersion } from '../../runners/ort/session.ts';

function identity(): Uint8Array {
  const g = new OnnxGraphBuilder('id');
  g.input('x', 'float32', ['n']);
  g.node('Identity', ['x'], ['y']);
  g.output('y', 'float32', ['n']);
  return g.toBytes();
}

describe('OrtSession', () => {
  it('reports the onnxruntime-node version it loaded', () => {
    expect(ortVersion()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it.skipIf(cudaAvailable())('asks for the CUDA provider install in one line when it is missing', async () => {
    expect(() => assertDevice('cuda')).toThrow(InputError);
    expect(() => assertDevice('cuda')).toThrow(CUDA_INSTALL_COMMAND);
    await expect(OrtSession.create(identity(), { device: 'cuda' })).rejects.toThrow(/--device cuda: .*not installed/);
  });

  it('runs with explicit thread and optimization options, prepared or not', async () => {
    const s = await OrtSession.create(identity(), { device: 'cpu', intraOpThreads: 1, graphOptimization: 'disabled' });
    try {
      expect(s.inputNames).toEqual(['x']);
      const out = await s.run({ x: { data: Float32Array.of(1, 2, 3), dims: [3] } });
      expect(Array.from(out.y?.data as Float32Array)).toEqual([1, 2, 3]);
      expect(out.y?.dims).toEqual([3]);
      const prepared = s.prepare({ x: { data: Float32Array.of(4), dims: [1] } });
      expect(Array.from((await s.runPrepared(prepared)).y?.data as Float32Array)).toEqual([4]);
    } finally {
      await s.close();
    }
  });
});
