// Builds HF `tokenizer.json` + `tokenizer_config.json` for the tiny models from tokenizers that ship
// on npm, so the tiny checkpoints carry the real LLaMA vocabularies without a download:
// - LLaMA 1/2: SentencePiece BPE with byte fallback, 32,000 tokens. `llama-tokenizer-js` embeds the
//   vocab and merge list extracted from Meta's HF `tokenizer.json` (its data-conversion.py); we put
//   them back into the layout of `meta-llama/Llama-2-7b-hf/tokenizer.json` (Prepend/Replace
//   normalizer, BPE with byte_fallback and fuse_unk, `<s>` TemplateProcessing).
// - LLaMA 3/3.x: tiktoken-style byte-level BPE, 128,000 tokens + 256 specials, from
//   `llama3-tokenizer-js`, in the layout of `meta-llama/Meta-Llama-3-8B/tokenizer.json` (Split regex +
//   ByteLevel pre-tokenizer, `ignore_merges`, `<|begin_of_text|>` TemplateProcessing).
// - tiny-llama-4: a small SYNTHETIC byte-level BPE (512 tokens, merges trained on a fixed paragraph,
//   see tokenizer-synthetic.ts); the real Llama 4 vocabulary (202,048 tokens) is on no npm package.
import llamaTokenizer from 'llama-tokenizer-js';
import llama3Tokenizer from 'llama3-tokenizer-js';
import { buildSyntheticTokenizer } from './tokenizer-synthetic.ts';

export type TokenizerKind = 'llama2' | 'llama3' | 'synthetic';

export interface TokenizerFiles {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
}

interface AddedTokenJson {
  id: number;
  content: string;
  single_word: false;
  lstrip: false;
  rstrip: false;
  normalized: false;
  special: true;
}

export function addedToken(id: number, content: string): AddedTokenJson {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

/** Merges in priority order, from a belladore tokenizer's `merges` map (key "a b" -> rank). */
function orderedMerges(merges: Map<string, number>): string[] {
  return [...merges.entries()].sort((a, b) => a[1] - b[1]).map(([pair]) => pair);
}

function vocabObject(tokens: readonly string[]): Record<string, number> {
  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => {
    vocab[t] = i;
  });
  return vocab;
}

/** TemplateProcessing that prepends `bos` to every sequence (HF's LlamaTokenizerFast does this). */
export function bosTemplate(bos: string, bosId: number): Record<string, unknown> {
  const special = { SpecialToken: { id: bos, type_id: 0 } };
  return {
    type: 'TemplateProcessing',
    single: [special, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [special, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: bos, type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
    special_tokens: { [bos]: { id: bos, ids: [bosId], tokens: [bos] } },
  };
}

// meta-llama/Llama-2-7b-chat-hf tokenizer_config.json `chat_template`.
const LLAMA2_CHAT_TEMPLATE =
  "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

// meta-llama/Meta-Llama-3-8B-Instruct tokenizer_config.json `chat_template`. (3.1+ Instruct templates
// add tool calling and a "Cutting Knowledge Date" system header; the tiny models keep this core.)
const LLAMA3_CHAT_TEMPLATE =
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

function llama2Files(withChatTemplate: boolean): TokenizerFiles {
  const tokens = llamaTokenizer.vocabById;
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [addedToken(0, '<unk>'), addedToken(1, '<s>'), addedToken(2, '</s>')],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: '▁' },
        { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
      ],
    },
    pre_tokenizer: null,
    post_processor: bosTemplate('<s>', 1),
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      vocab: vocabObject(tokens),
      merges: orderedMerges(llamaTokenizer.merges),
    },
  };
  const tokenizerConfig: Record<string, unknown> = {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: '<s>',
    eos_token: '</s>',
    unk_token: '<unk>',
    pad_token: null,
    clean_up_tokenization_spaces: false,
    legacy: false,
    model_max_length: 1000000000000000019884624838656,
    tokenizer_class: 'LlamaTokenizer',
  };
  if (withChatTemplate) tokenizerConfig.chat_template = LLAMA2_CHAT_TEMPLATE;
  return { tokenizerJson, tokenizerConfig };
}

// Meta-Llama-3 `tokenizer.json` pre-tokenizer regex (the tiktoken cl100k-style pattern).
export const LLAMA3_SPLIT_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

export function byteLevelPipeline(bos: string, bosId: number): Record<string, unknown> {
  return {
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: LLAMA3_SPLIT_REGEX }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: 'Sequence',
      processors: [{ type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true }, bosTemplate(bos, bosId)],
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
  };
}

function llama3Files(): TokenizerFiles {
  // vocabById: 128,000 byte-level BPE tokens followed by the 256 `<|...|>` specials (ids 128000+).
  const all = llama3Tokenizer.vocabById;
  const base = all.slice(0, 128000);
  const specials = all.slice(128000);
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((t, i) => addedToken(128000 + i, t)),
    ...byteLevelPipeline('<|begin_of_text|>', 128000),
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: true,
      vocab: vocabObject(base),
      merges: orderedMerges(llama3Tokenizer.merges),
    },
  };
  const tokenizerConfig = {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: '<|begin_of_text|>',
    eos_token: '<|end_of_text|>',
    clean_up_tokenization_spaces: true,
    model_input_names: ['input_ids', 'attention_mask'],
    model_max_length: 131072,
    tokenizer_class: 'PreTrainedTokenizerFast',
    chat_template: LLAMA3_CHAT_TEMPLATE,
  };
  return { tokenizerJson, tokenizerConfig };
}

/** The tokenizer files for a tiny model of the given kind. */
export function tokenizerFilesFor(kind: TokenizerKind, options: { chatTemplate?: boolean; vocabSize?: number } = {}): TokenizerFiles {
  if (kind === 'llama2') return llama2Files(options.chatTemplate ?? true);
  if (kind === 'llama3') return llama3Files();
  return buildSyntheticTokenizer(options.vocabSize ?? 512);
}
