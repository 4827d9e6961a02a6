// `llama-eval export`: the ONNX graph the ORT runner builds, written as a directory that
// transformers.js loads (config.json and tokenizer files at the top, the graph in onnx/model.onnx).
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../../results/errors.ts';
import { openCheckpoint } from '../../runners/hf/checkpoint.ts';
import { buildLlamaGraph, llamaWeightBytes } from '../../runners/ort/llama-graph.ts';
import { EXTERNAL_DATA_FILE } from '../../runners/ort/llama-model.ts';
import { CheckpointWeights } from '../../runners/hf/weights.ts';
import { temperatureTuningFrom } from '../../runners/reference-weights.ts';
import type { CliIO } from './command.ts';
import { humanBytes } from './output.ts';

const COPIED = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'];

export async function run(args: Record<string, unknown>, io: CliIO): Promise<number> {
  switch (args.format ?? 'onnx') {
    case 'onnx':
      return exportOnnx(args, io);
    case 'gguf': {
      const { exportGguf } = await import('./export-gguf.ts');
      return exportGguf(args, io);
    }
    default:
      throw new InputError(`--format ${String(args.format)}: expected onnx or gguf`);
  }
}

async function exportOnnx(args: Record<string, unknown>, io: CliIO): Promise<number> {
  const checkpoint = await openCheckpoint(String(args.model), { offline: args.offline === true });
  const out = String(args.out);
  mkdirSync(join(out, 'onnx'), { recursive: true });
  // Past 1 GiB the weights go to onnx/model.onnx_data (ONNX external data, as optimum writes it):
  // protobuf cannot hold more than 2 GiB.
  const external = llamaWeightBytes(checkpoint.arch) > 2 ** 30;
  const weights = CheckpointWeights.open(checkpoint.dir);
  let graph: Uint8Array;
  try {
    graph = buildLlamaGraph(checkpoint.arch, weights, {
      temperatureTuning: temperatureTuningFrom(checkpoint.arch, checkpoint.config),
      fused: args.fused === true,
      externalData: external ? { path: join(out, 'onnx', EXTERNAL_DATA_FILE), location: EXTERNAL_DATA_FILE } : undefined,
    });
  } finally {
    weights.close();
  }
  writeFileSync(join(out, 'onnx', 'model.onnx'), graph);
  const copied = COPIED.filter((f) => existsSync(join(checkpoint.dir, f)));
  for (const file of copied) copyFileSync(join(checkpoint.dir, file), join(out, file));
  const data = external ? ` + ${EXTERNAL_DATA_FILE}` : '';
  io.out(`wrote ${join(out, 'onnx', 'model.onnx')}${data} (graph ${humanBytes(graph.byteLength)}) and ${copied.join(', ')}\n`);
  return 0;
}
