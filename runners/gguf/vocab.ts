// The `tokenizer.ggml.*` metadata of a GGUF, from an HF `tokenizer.json` + `tokenizer_config.json`,
// as llama.cpp's convert_hf_to_gguf.py writes it:
// - SentencePiece-style BPE with byte fallback (LLaMA 1/2): model `llama`, pre `default`, tokens,
//   scores, token types (`_set_vocab_sentencepiece` / `_set_vocab_llama_hf`).
// - Byte-level BPE (LLaMA 3.x): model `gpt2`, pre `llama-bpe`, tokens, token types, merges
//   (`_set_vocab_gpt2`, `get_vocab_base`); ids with no token become `[PAD{id}]`, type UNUSED.
// Plus bos/eos/unk ids and add_bos_token/add_eos_token (gguf-py `SpecialVocab`).
import { InputError } from '../../results/errors.ts';
import type { GgufValue } from './writer.ts';

/** gguf-py `TokenType` (llama.cpp `llama_token_type`). */
export const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

interface AddedToken {
  id: number;
  content: string;
  special?: boolean;
}

function tokenString(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && typeof (value as { content?: unknown }).content === 'string') return (value as { content: string }).content;
  return null;
}

export interface GgufVocab {
  kind: 'llama' | 'gpt2';
  tokens: string[];
  metadata: Map<string, GgufValue>;
}

/**
 * Builds the tokenizer metadata for a vocabulary of `vocabSize` ids (config.json `vocab_size`,
 * which may exceed the tokenizer's own size: the extra ids are padding).
 */
export function ggufVocabFromTokenizer(tokenizerJson: Record<string, unknown>, tokenizerConfig: Record<string, unknown>, vocabSize: number, source = 'tokenizer.json'): GgufVocab {
  const model = tokenizerJson.model as { type?: unknown; vocab?: unknown; merges?: unknown; byte_fallback?: unknown } | undefined;
  if (!model || model.type !== 'BPE' || typeof model.vocab !== 'object' || model.vocab === null) {
    throw new InputError(`${source}: expected a BPE tokenizer model with a vocab (LLaMA 1-3 tokenizers are BPE); GGUF export supports only those`);
  }
  const added = (Array.isArray(tokenizerJson.added_tokens) ? tokenizerJson.added_tokens : []) as AddedToken[];
  const byId = new Map<number, string>();
  for (const [token, id] of Object.entries(model.vocab as Record<string, number>)) byId.set(id, token);
  for (const t of added) byId.set(t.id, t.content);
  const specialIds = new Set(added.filter((t) => t.special !== false).map((t) => t.id));
  const kind = model.byte_fallback === true ? 'llama' : 'gpt2';
  const tokens: string[] = [];
  const types: number[] = [];
  const scores: number[] = [];
  for (let id = 0; id < vocabSize; id++) {
    const token = byId.get(id);
    if (token === undefined) {
      tokens.push(`[PAD${id}]`);
      types.push(TokenType.UNUSED);
      scores.push(-1000);
      continue;
    }
    tokens.push(token);
    if (kind === 'llama' && /^<0x[0-9A-Fa-f]{2}>$/.test(token)) {
      types.push(TokenType.BYTE);
      scores.push(0);
    } else if (kind === 'llama' && token === '<unk>') {
      types.push(TokenType.UNKNOWN);
      scores.push(0);
    } else if (specialIds.has(id)) {
      types.push(TokenType.CONTROL);
      scores.push(0);
    } else {
      types.push(TokenType.NORMAL);
      // llama.cpp's SentencePiece tokenizer merges the pair whose result has the highest score.
      // convert's `_set_vocab_llama_hf` writes -1000 for every token, which turns that into
      // left-to-right merging; Meta's tokenizer.model scores fall with the id (ids follow merge
      // order), so -id reproduces its merge priority and llama.cpp tokenizes like HF.
      scores.push(-id);
    }
  }
  const metadata = new Map<string, GgufValue>();
  metadata.set('tokenizer.ggml.model', { type: 'string', value: kind });
  metadata.set('tokenizer.ggml.pre', { type: 'string', value: kind === 'llama' ? 'default' : 'llama-bpe' });
  metadata.set('tokenizer.ggml.tokens', { type: 'string[]', value: tokens });
  if (kind === 'llama') metadata.set('tokenizer.ggml.scores', { type: 'f32[]', value: scores });
  metadata.set('tokenizer.ggml.token_type', { type: 'i32[]', value: types });
  if (kind === 'gpt2') {
    const merges = Array.isArray(model.merges) ? model.merges : [];
    // tokenizer.json holds merges as "a b" strings (older) or [a, b] pairs (tokenizers >= 0.20).
    const asStrings = merges.map((m: unknown) => (Array.isArray(m) ? m.join(' ') : String(m)));
    metadata.set('tokenizer.ggml.merges', { type: 'string[]', value: asStrings });
  }
  const idOf = (key: string): number | null => {
    const s = tokenString(tokenizerConfig[key]);
    if (s === null) return null;
    const id = tokens.indexOf(s);
    return id >= 0 ? id : null;
  };
  const special: [string, string][] = [
    ['bos_token', 'tokenizer.ggml.bos_token_id'],
    ['eos_token', 'tokenizer.ggml.eos_token_id'],
    ['unk_token', 'tokenizer.ggml.unknown_token_id'],
    ['pad_token', 'tokenizer.ggml.padding_token_id'],
  ];
  for (const [key, ggufKey] of special) {
    const id = idOf(key);
    if (id !== null) metadata.set(ggufKey, { type: 'u32', value: id });
  }
  metadata.set('tokenizer.ggml.add_bos_token', { type: 'bool', value: tokenizerConfig.add_bos_token !== false });
  metadata.set('tokenizer.ggml.add_eos_token', { type: 'bool', value: tokenizerConfig.add_eos_token === true });
  if (typeof tokenizerConfig.chat_template === 'string') metadata.set('tokenizer.chat_template', { type: 'string', value: tokenizerConfig.chat_template });
  return { kind, tokens, metadata };
}
