// The GGUF writer and the LLaMA export: files parse back with a reader written here from the
// GGUF spec (ggml docs/gguf.md) and with node-llama-cpp's own reader, tensors carry llama.cpp's
// names, shapes and types, and the Q/K permutation matches convert_hf_to_gguf.py's numpy expression.
import { mkdtempSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGgufFileInfo } from 'node-llama-cpp';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../results/errors.ts';
import { exportCheckpointToGguf, llama3RopeFactors, llamaGgufFromCheckpoint, permuteQk } from '../../runners/gguf/llama.ts';
import { writeGguf, type GgufValue } from '../../runners/gguf/writer.ts';
import { readCheckpointDir } from '../../runners/hf/checkpoint.ts';
import { defaultInvFreq, llama3InvFreq } from '../../runners/reference-rope.ts';
import { ensureTinyCheckpoint } from '../../runners/tiny.ts';

const dir = mkdtempSync(join(tmpdir(), 'llama-eval-gguf-'));
const env = { LLAMA_EVAL_CACHE: join(dir, 'cache') };
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface ParsedGguf {
  version: number;
  alignment: number;
  kv: Map<string, unknown>;
  tensors: { name: string; dims: number[]; type: number; offset: number }[];
  dataStart: number;
  bytes: Buffer;
}

/** A GGUF reader straight from the spec, independent of the writer's code. */
function parseGguf(file: string): ParsedGguf {
  const bytes = readFileSync(file);
  let p = 0;
  const u32 = () => ((p += 4), bytes.readUInt32LE(p - 4));
  const u64 = () => ((p += 8), Number(bytes.readBigUInt64LE(p - 8)));
  const str = () => {
    const n = u64();
    p += n;
    return bytes.toString('utf8', p - n, p);
  };
  const scalar = (type: number): unknown => {
    switch (type) {
      case 4: return u32();
      case 5: return ((p += 4), bytes.readInt32LE(p - 4));
      case 6: return ((p += 4), bytes.readFloatLE(p - 4));
      case 7: return ((p += 1), bytes[p - 1] === 1);
      case 8: return str();
      case 9: {
        const elem = u32();
        const n = u64();
        return Array.from({ length: n }, () => scalar(elem));
      }
      default: throw new Error(`unexpected GGUF value type ${type}`);
    }
  };
  expect(bytes.toString('latin1', 0, 4)).toBe('GGUF');
  p = 4;
  const version = u32();
  const tensorCount = u64();
  const kvCount = u64();
  const kv = new Map<string, unknown>();
  for (let i = 0; i < kvCount; i++) {
    const key = str();
    kv.set(key, scalar(u32()));
  }
  const tensors = Array.from({ length: tensorCount }, () => {
    const name = str();
    const nDims = u32();
    const dims = Array.from({ length: nDims }, () => u64());
    return { name, dims, type: u32(), offset: u64() };
  });
  const alignment = (kv.get('general.alignment') as number | undefined) ?? 32;
  const dataStart = Math.ceil(p / alignment) * alignment;
  return { version, alignment, kv, tensors, dataStart, bytes };
}

describe('writeGguf', () => {
  it('writes a v3 header, typed metadata, reversed dims and aligned F32/F16 data', () => {
    const file = join(dir, 'small.gguf');
    const metadata = new Map<string, GgufValue>([
      ['general.architecture', { type: 'string', value: 'llama' }],
      ['a.u32', { type: 'u32', value: 7 }],
      ['a.i32', { type: 'i32', value: -3 }],
      ['a.f32', { type: 'f32', value: 0.5 }],
      ['a.bool', { type: 'bool', value: true }],
      ['a.strings', { type: 'string[]', value: ['x', 'ü'] }],
      ['a.floats', { type: 'f32[]', value: [1.5, -2] }],
      ['a.ints', { type: 'i32[]', value: [1, -1] }],
    ]);
    writeGguf(file, metadata, [
      { name: 'w', shape: [2, 3], type: 'F32', data: Float32Array.of(1, 2, 3, 4, 5, 6) },
      { name: 'h', shape: [3], type: 'F16', data: Float32Array.of(1, -2, 0.5) },
    ]);
    const g = parseGguf(file);
    expect(g.version).toBe(3);
    expect(Object.fromEntries(g.kv)).toEqual({
      'general.architecture': 'llama', 'a.u32': 7, 'a.i32': -3, 'a.f32': 0.5, 'a.bool': true, 'a.strings': ['x', 'ü'], 'a.floats': [1.5, -2], 'a.ints': [1, -1],
    });
    // GGUF lists ne[0] (the innermost, contiguous dimension) first: a [2, 3] row-major matrix is [3, 2].
    expect(g.tensors.map((t) => [t.name, t.dims, t.type])).toEqual([['w', [3, 2], 0], ['h', [3], 1]]);
    for (const t of g.tensors) expect(t.offset % 32).toBe(0);
    const w = g.tensors[0]!;
    expect(Array.from({ length: 6 }, (_, i) => g.bytes.readFloatLE(g.dataStart + w.offset + 4 * i))).toEqual([1, 2, 3, 4, 5, 6]);
    // IEEE 754 binary16 encodings: 1.0 = 0x3C00, -2.0 = 0xC000, 0.5 = 0x3800.
    const h = g.tensors[1]!;
    expect([0, 1, 2].map((i) => g.bytes.readUInt16LE(g.dataStart + h.offset + 2 * i))).toEqual([0x3c00, 0xc000, 0x3800]);
  });

  it('refuses duplicate tensor names and data that does not fill the shape', () => {
    const file = join(dir, 'bad.gguf');
    const t = { name: 'x', shape: [2], type: 'F32' as const, data: Float32Array.of(1, 2) };
    expect(() => writeGguf(file, new Map(), [t, t])).toThrow(/duplicate tensor name x/);
    expect(() => writeGguf(file, new Map(), [{ ...t, shape: [3] }])).toThrow(/has 2 values but shape \[3\]/);
  });
});

describe('permuteQk (convert_hf_to_gguf.py LlamaModel.permute)', () => {
  it('moves rotate-half rows to interleaved pairs within each head', () => {
    // numpy: np.arange(8).reshape(2, 2, 2, 1).swapaxes(1, 2).reshape(8) == [0, 2, 1, 3, 4, 6, 5, 7]
    // (2 heads of dim 4, one column), worked by hand: head 0 [[0, 1], [2, 3]] -> [[0, 2], [1, 3]].
    expect([...permuteQk(Float32Array.from({ length: 8 }, (_, i) => i), 2, 8, 1)]).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
    // Whole rows move: with 2 columns, row r = [10r, 10r + 1].
    const rows = Float32Array.from({ length: 8 }, (_, i) => 10 * Math.floor(i / 2) + (i % 2));
    expect([...permuteQk(rows, 1, 4, 2)]).toEqual([0, 1, 20, 21, 10, 11, 30, 31]);
  });
});

describe('llama3RopeFactors', () => {
  it('divides the base frequencies into exactly transformers\' llama3 inv_freq', () => {
    // Llama-3.1-8B config.json: rope_theta 500000, head_dim 128, factor 8, low 1, high 4, original 8192.
    const scaling = { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 };
    const factors = llama3RopeFactors(500000, 128, scaling);
    const base = defaultInvFreq(500000, 128);
    const hf = llama3InvFreq(base, 8, 1, 4, 8192);
    expect(factors[0]).toBe(1); // highest frequency: unchanged
    expect(factors[63]).toBe(8); // lowest frequency: divided by factor
    for (let i = 0; i < 64; i++) expect(Math.abs(base[i]! / factors[i]! - hf[i]!) / hf[i]!).toBeLessThan(1e-6);
  });
});

describe('llamaGgufFromCheckpoint', () => {
  it('names, shapes and types tensors as llama.cpp does; node-llama-cpp reads the metadata', async () => {
    const checkpoint = readCheckpointDir(ensureTinyCheckpoint('tiny-llama-2', { env }), 'tiny-llama-2', 'tiny');
    const file = join(dir, 'tiny-llama-2-f16.gguf');
    exportCheckpointToGguf(checkpoint, file, 'f16');
    const info = await readGgufFileInfo(file, { readTensorInfo: true });
    const tensors = new Map(info.fullTensorInfo!.map((t) => [t.name, { dims: t.dimensions.map(Number), type: t.ggmlType }]));
    // tiny-llama-2 (harness/zoo/tiny.ts): hidden 64, 4 heads, 2 kv heads (k rows 2 * 16), MLP 176, vocab 32000.
    // Types: ggml F16 = 1 for matrices; convert keeps 1-D norms in F32 = 0.
    expect(tensors.get('token_embd.weight')).toEqual({ dims: [64, 32000], type: 1 });
    expect(tensors.get('blk.0.attn_norm.weight')).toEqual({ dims: [64], type: 0 });
    expect(tensors.get('blk.1.attn_q.weight')).toEqual({ dims: [64, 64], type: 1 });
    expect(tensors.get('blk.1.attn_k.weight')).toEqual({ dims: [64, 32], type: 1 });
    expect(tensors.get('blk.1.attn_v.weight')).toEqual({ dims: [64, 32], type: 1 });
    expect(tensors.get('blk.1.attn_output.weight')).toEqual({ dims: [64, 64], type: 1 });
    expect(tensors.get('blk.1.ffn_gate.weight')).toEqual({ dims: [64, 176], type: 1 });
    expect(tensors.get('blk.1.ffn_up.weight')).toEqual({ dims: [64, 176], type: 1 });
    expect(tensors.get('blk.1.ffn_down.weight')).toEqual({ dims: [176, 64], type: 1 });
    expect(tensors.get('blk.1.ffn_norm.weight')).toEqual({ dims: [64], type: 0 });
    expect(tensors.get('output_norm.weight')).toEqual({ dims: [64], type: 0 });
    expect(tensors.get('output.weight')).toEqual({ dims: [64, 32000], type: 1 });
    expect(tensors.size).toBe(3 + 2 * 9);
    const m = info.metadata as unknown as Record<string, Record<string, unknown>>;
    expect(m.general!.architecture).toBe('llama');
    expect(m.general!.file_type).toBe(1);
    const llama = m.llama as Record<string, unknown>;
    expect(llama.block_count).toBe(2);
    expect(llama.embedding_length).toBe(64);
    expect(llama.feed_forward_length).toBe(176);
    expect(llama.context_length).toBe(4096);
    expect(llama.rope).toEqual({ dimension_count: 16, freq_base: 10000 });
    expect((llama.attention as Record<string, unknown>).head_count_kv).toBe(2);
    const tok = (m.tokenizer as { ggml: Record<string, unknown> }).ggml;
    expect(tok.model).toBe('llama');
    // Meta's Llama-2 vocabulary: 0 <unk>, 1 <s>, 2 </s>, 3.. <0x00>.. byte tokens, 15043 "▁Hello".
    const tokens = tok.tokens as string[];
    expect([tokens[0], tokens[1], tokens[2], tokens[3], tokens[15043]]).toEqual(['<unk>', '<s>', '</s>', '<0x00>', '▁Hello']);
    expect((tok.token_type as number[]).slice(0, 4)).toEqual([2, 3, 3, 6]); // UNKNOWN, CONTROL, CONTROL, BYTE
    expect([tok.bos_token_id, tok.eos_token_id]).toEqual([1, 2]);
    unlinkSync(file);
  });

  it('adds rope_freqs, key_length and drops output.weight for tiny-llama-3.2 (llama3 scaling, head_dim, tied)', () => {
    const checkpoint = readCheckpointDir(ensureTinyCheckpoint('tiny-llama-3.2', { env }), 'tiny-llama-3.2', 'tiny');
    const model = llamaGgufFromCheckpoint(checkpoint, 'f32');
    const names = model.tensors.map((t) => t.name);
    expect(names).toContain('rope_freqs.weight');
    expect(names).not.toContain('output.weight');
    expect(model.tensors.find((t) => t.name === 'rope_freqs.weight')!.shape).toEqual([16]); // head_dim 32 / 2
    expect(model.metadata.get('llama.attention.key_length')).toEqual({ type: 'u32', value: 32 });
    expect(model.metadata.get('tokenizer.ggml.model')).toEqual({ type: 'string', value: 'gpt2' });
    expect(model.metadata.get('tokenizer.ggml.pre')).toEqual({ type: 'string', value: 'llama-bpe' });
    // Meta-Llama-3 tokenizer.json: the first merge is "Ġ Ġ"; id 128000 is <|begin_of_text|>.
    expect((model.metadata.get('tokenizer.ggml.merges') as { value: readonly string[] }).value[0]).toBe('Ġ Ġ');
    expect(model.metadata.get('tokenizer.ggml.bos_token_id')).toEqual({ type: 'u32', value: 128000 });
  });

  it('refuses checkpoints it cannot export with an InputError naming the model', () => {
    const llama4 = readCheckpointDir(ensureTinyCheckpoint('tiny-llama-4', { env }), 'tiny-llama-4', 'tiny');
    expect(() => llamaGgufFromCheckpoint(llama4)).toThrow(InputError);
    expect(() => llamaGgufFromCheckpoint(llama4)).toThrow(/tiny-llama-4: GGUF export supports model_type "llama"/);
  });
});
