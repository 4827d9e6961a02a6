// ONNX external data (onnx-builder externalData): weights written to a side file at 4 KiB-aligned
// offsets, the model loading from it in ORT with the same results as the inline graph.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeModel, OnnxGraphBuilder } from '../../runners/ort/onnx-builder.ts';
import { OrtLlamaModel, ortTokenLogprobs } from '../../runners/ort/llama-model.ts';
import { OrtSession } from '../../runners/ort/session.ts';
import { spreadIds, tinyCache } from '../parity/ort-helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'ort-external-'));
const cache = tinyCache('ort-external-cache-');
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  cache.cleanup();
});

describe('ONNX external data', () => {
  it('writes large initializers to the side file at 4 KiB-aligned offsets; small ones stay inline', async () => {
    const g = new OnnxGraphBuilder('ext').externalData(join(dir, 'w.bin'), 'w.bin', 1024);
    const a = Float32Array.from({ length: 300 }, (_, i) => i / 7); // 1200 bytes: external
    const b = Float32Array.from({ length: 500 }, (_, i) => -i); // 2000 bytes: external, after padding
    g.initializer('a', a, [300]);
    g.initializer('b', b, [500]);
    g.initializer('c', Float32Array.of(2), [1]); // 4 bytes: inline
    g.input('x', 'float32', [500]);
    g.node('Mul', ['x', 'b'], ['y']);
    g.output('y', 'float32', [500]);
    const model = decodeModel(g.toBytes());
    const tensor = (name: string) => (model.graph?.initializer ?? []).find((t) => t.name === name)!;
    const entries = (name: string) => Object.fromEntries((tensor(name).externalData ?? []).map((e) => [e.key, e.value]));
    expect(entries('a')).toEqual({ location: 'w.bin', offset: '0', length: '1200' });
    expect(entries('b')).toEqual({ location: 'w.bin', offset: '4096', length: '2000' });
    expect(tensor('c').externalData ?? []).toEqual([]);
    const file = readFileSync(join(dir, 'w.bin'));
    expect(file.byteLength).toBe(4096 + 2000);
    expect(new Float32Array(file.buffer.slice(file.byteOffset + 4096, file.byteOffset + 6096))).toEqual(b);
    // ORT resolves the location relative to the model file.
    const modelPath = join(dir, 'ext.onnx');
    writeFileSync(modelPath, g.toBytes());
    const session = await OrtSession.create(modelPath, { intraOpThreads: 1 });
    try {
      const out = await session.run({ x: { data: new Float32Array(500).fill(3), dims: [500] } });
      expect(Array.from(out.y!.data as Float32Array)).toEqual(Array.from(b, (v) => v * 3));
    } finally {
      await session.close();
    }
  });

  it('a LLaMA model loaded through external data scores as the inline one', async () => {
    const checkpoint = cache.checkpoint('tiny-llama-3.2');
    const ids = spreadIds(12, checkpoint.arch.text.vocabSize);
    const inline = await OrtLlamaModel.fromCheckpoint(checkpoint, { intraOpThreads: 1, externalData: false });
    const external = await OrtLlamaModel.fromCheckpoint(checkpoint, { intraOpThreads: 1, externalData: true });
    try {
      expect(external.graphBytes).toBeLessThan(inline.graphBytes / 100);
      const a = await ortTokenLogprobs(inline, ids);
      const b = await ortTokenLogprobs(external, ids);
      a.slice(1).forEach((x, i) => expect(Math.abs(x! - b[i + 1]!)).toBeLessThanOrEqual(1e-6));
    } finally {
      await inline.close();
      await external.close();
    }
  });
});
