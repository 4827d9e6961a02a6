// The tokenizer.json files we build for the tiny models, run by @huggingface/tokenizers, against the
// issue's figures and against the belladore encoders (an independent BPE implementation over the
// same vocabularies).
import llamaTokenizer from 'llama-tokenizer-js';
import llama3Tokenizer from 'llama3-tokenizer-js';
import { describe, expect, it } from 'vitest';
import { tokenizerFilesFor } from '../../runners/tokenizer-convert.ts';
import { LlamaTokenizer } from '../../runners/tokenizer.ts';

const fromKind = (kind: 'llama2' | 'llama3' | 'synthetic') => {
  const files = tokenizerFilesFor(kind);
  return LlamaTokenizer.fromJson(files.tokenizerJson, files.tokenizerConfig);
};
const llama2 = fromKind('llama2');
const llama3 = fromKind('llama3');
const synthetic = fromKind('synthetic');

const SAMPLES = [
  'Hello world',
  ' leading space and  double  spaces',
  'Line one\nLine two\n\n\ttabbed',
  "I'm sure they'll say it's 12345 or 3.14159!",
  'naïve café, Zürich — 日本語のテキスト 🦙🦙',
  'def f(x):\n    return x**2  # squares',
];

describe('LLaMA 1/2 tokenizer (SentencePiece BPE with byte fallback)', () => {
  it('"Hello world" is [1, 15043, 3186] with BOS', () => {
    // Issue #4 figure; also meta-llama/Llama-2-7b-hf: "<s>", "▁Hello" = 15043, "▁world" = 3186.
    expect(llama2.encode('Hello world')).toEqual([1, 15043, 3186]);
    expect(llama2.encode('Hello world', { addSpecialTokens: false })).toEqual([15043, 3186]);
  });

  it.each(SAMPLES)('matches llama-tokenizer-js on %j', (text) => {
    // llama-tokenizer-js encode(text) adds BOS and the SentencePiece preceding space by default.
    expect(llama2.encode(text)).toEqual(llamaTokenizer.encode(text));
    expect(llama2.decode(llama2.encode(text, { addSpecialTokens: false }))).toBe(text);
  });

  it('falls back to bytes for characters outside the vocabulary', () => {
    // 🦙 = F0 9F A6 99; byte tokens <0xNN> have id NN + 3 (after <unk>, <s>, </s>).
    const ids = llama2.encode('🦙', { addSpecialTokens: false });
    expect(ids.slice(-4)).toEqual([0xf0 + 3, 0x9f + 3, 0xa6 + 3, 0x99 + 3]);
  });

  it('renders the Llama 2 chat template', () => {
    // Format of meta-llama/Llama-2-7b-chat-hf: <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST]
    const text = llama2.applyChatTemplate([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
    ]);
    expect(text).toBe('<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]');
  });
});

describe('LLaMA 3 tokenizer (tiktoken-style byte-level BPE)', () => {
  it('"Hello world" is [9906, 1917] without BOS and starts with 128000 with it', () => {
    // Issue #4 figure; <|begin_of_text|> = 128000 in Meta-Llama-3 tokenizer_config.json.
    expect(llama3.encode('Hello world', { addSpecialTokens: false })).toEqual([9906, 1917]);
    expect(llama3.encode('Hello world')).toEqual([128000, 9906, 1917]);
  });

  it.each(SAMPLES)('matches llama3-tokenizer-js on %j', (text) => {
    expect(llama3.encode(text, { addSpecialTokens: false })).toEqual(llama3Tokenizer.encode(text, { bos: false, eos: false }));
    expect(llama3.decode(llama3.encode(text, { addSpecialTokens: false }))).toBe(text);
  });

  it('keeps special tokens whole and renders the Llama 3 chat template', () => {
    // Meta-Llama-3-8B-Instruct: <|start_header_id|> = 128006, <|end_header_id|> = 128007, <|eot_id|> = 128009.
    const prompt = llama3.applyChatTemplate([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true });
    expect(prompt).toBe('<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n');
    const ids = llama3.encode(prompt, { addSpecialTokens: false });
    expect(ids.slice(0, 2)).toEqual([128000, 128006]);
    expect(ids).toContain(128009);
    expect(ids).toEqual(llama3Tokenizer.encode(prompt, { bos: false, eos: false }));
  });
});

describe('tiny-llama-4 synthetic tokenizer', () => {
  it('is byte-level: ids 8..263 are the bytes, any text round-trips', () => {
    for (const text of SAMPLES) {
      const ids = synthetic.encode(text, { addSpecialTokens: false });
      expect(Math.max(...ids)).toBeLessThan(512); // tiny-llama-4 vocab_size (harness/zoo/tiny.ts)
      expect(synthetic.decode(ids)).toBe(text);
    }
    expect(synthetic.encode('Hello')[0]).toBe(1); // <|begin_of_text|> = bos_token_id 1 in the tiny config
  });

  it('learned merges shorten English text', () => {
    const text = 'The llama is a domesticated animal.';
    expect(synthetic.encode(text, { addSpecialTokens: false }).length).toBeLessThan(new TextEncoder().encode(text).length / 2);
  });
});
