// A small SYNTHETIC byte-level BPE for tiny-llama-4: the real Llama 4 vocabulary (202,048 tokens)
// ships on no npm package, and a 202k-row embedding would dwarf a tiny model. Layout:
//   ids 0..7      special tokens (Llama 4 names: <|begin_of_text|> = 1, <|end_of_text|> = 2, ...)
//   ids 8..263    the 256 bytes, GPT-2 byte-to-unicode alphabet, in byte order
//   ids 264..     merges learned by plain BPE (most frequent pair, ties by string order) on the
//                 fixed paragraph below, until the vocabulary is full or no pair occurs twice;
//                 leftover ids become <|reserved_special_token_N|>.
// Deterministic: same code, same tokenizer. Pre-tokenization uses the Llama 3 split regex.
import type { TokenizerFiles } from './tokenizer-convert.ts';
import { addedToken, byteLevelPipeline } from './tokenizer-convert.ts';

const SPECIALS = [
  '<|finetune_right_pad|>',
  '<|begin_of_text|>',
  '<|end_of_text|>',
  '<|header_start|>',
  '<|header_end|>',
  '<|eot|>',
  '<|eom|>',
  '<|python_start|>',
];

const CORPUS = `The llama is a domesticated South American camelid, widely used as a meat and pack animal by
Andean cultures since the pre-Columbian era. Llamas are social animals and live with others as a herd.
Their wool is soft and contains only a small amount of lanolin. Llamas can learn simple tasks after a
few repetitions. When using a pack, they can carry about 25 to 30% of their body weight for 8 to 13 km.
Language models read text as tokens; a tokenizer splits the text into pieces and maps each piece to a
number. The model then predicts the next token, one at a time, and the question is how well it does.
Hello world! What is the answer to the question? The answer is 42. Is it true that the sun is a star?
Yes, the sun is a star, and the earth is a planet that goes around the sun once every year.`;

/** GPT-2's reversible byte -> printable unicode character map (openai/gpt-2 encoder.py). */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n += 1;
    }
  }
  const map: string[] = new Array(256);
  bs.forEach((b, i) => {
    map[b] = String.fromCharCode(cs[i]!);
  });
  return map;
}

// The Llama 3 split pattern in JavaScript syntax (the `(?i:...)` group spelled out).
const SPLIT = /(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

function trainMerges(maxMerges: number, byteChars: string[]): string[][] {
  const encoder = new TextEncoder();
  const counts = new Map<string, number>();
  for (const m of CORPUS.matchAll(SPLIT)) {
    const word = Array.from(encoder.encode(m[0]), (b) => byteChars[b]!).join('');
    counts.set(word, (counts.get(word) ?? 0) + 1);
  }
  const words = [...counts.entries()].map(([w, c]) => ({ symbols: Array.from(w), count: c }));
  const merges: string[][] = [];
  while (merges.length < maxMerges) {
    const pairs = new Map<string, number>();
    for (const { symbols, count } of words) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = `${symbols[i]} ${symbols[i + 1]}`;
        pairs.set(key, (pairs.get(key) ?? 0) + count);
      }
    }
    let best: string | null = null;
    let bestCount = 1; // a pair seen once teaches nothing
    for (const [key, c] of pairs) {
      if (c > bestCount || (c === bestCount && best !== null && key < best)) {
        best = key;
        bestCount = c;
      }
    }
    if (best === null) break;
    const [a, b] = best.split(' ') as [string, string];
    merges.push([a, b]);
    for (const w of words) {
      const out: string[] = [];
      for (let i = 0; i < w.symbols.length; i++) {
        if (i + 1 < w.symbols.length && w.symbols[i] === a && w.symbols[i + 1] === b) {
          out.push(a + b);
          i += 1;
        } else {
          out.push(w.symbols[i]!);
        }
      }
      w.symbols = out;
    }
  }
  return merges;
}

// A Llama-4-style chat template (header_start/header_end/eot), written for the synthetic vocabulary.
const CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{{ '<|header_start|>' + message['role'] + '<|header_end|>\n\n' + message['content'] | trim + '<|eot|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|header_start|>assistant<|header_end|>\n\n' }}{% endif %}";

export function buildSyntheticTokenizer(vocabSize: number): TokenizerFiles {
  const byteChars = bytesToUnicode();
  const first = SPECIALS.length + 256;
  const merges = trainMerges(Math.max(0, vocabSize - first), byteChars);
  const vocab: Record<string, number> = {};
  byteChars.forEach((c, b) => {
    vocab[c] = SPECIALS.length + b;
  });
  merges.forEach(([a, b], i) => {
    vocab[a! + b!] = first + i;
  });
  const added = SPECIALS.map((t, i) => addedToken(i, t));
  for (let id = first + merges.length; id < vocabSize; id++) added.push(addedToken(id, `<|reserved_special_token_${id}|>`));
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    ...byteLevelPipeline('<|begin_of_text|>', 1),
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };
  const tokenizerConfig = {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: '<|begin_of_text|>',
    eos_token: '<|end_of_text|>',
    pad_token: '<|finetune_right_pad|>',
    clean_up_tokenization_spaces: false,
    model_max_length: 1024,
    tokenizer_class: 'PreTrainedTokenizerFast',
    chat_template: CHAT_TEMPLATE,
  };
  return { tokenizerJson, tokenizerConfig };
}
