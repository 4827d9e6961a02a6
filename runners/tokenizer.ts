// A checkpoint's tokenizer: `tokenizer.json` run by `@huggingface/tokenizers` (the JS port of HF
// tokenizers), special tokens and the chat template from `tokenizer_config.json`, the template
// rendered by `@huggingface/jinja` as transformers' `apply_chat_template` does.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { InputError } from '../results/errors.ts';

export interface ChatMessage {
  role: string;
  content: string;
}

export interface EncodeOptions {
  /** Add BOS (etc.) as the tokenizer's post-processor does; default true, like HF `__call__`. */
  addSpecialTokens?: boolean;
}

/** A special token in tokenizer_config.json is a string or an AddedToken object `{content}`. */
function tokenString(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return null;
}

function readJson(file: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (error) {
    throw new InputError(`${file}: not valid JSON (${(error as Error).message})`);
  }
}

export class LlamaTokenizer {
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  readonly chatTemplate: string | null;
  /** Whether encoding with special tokens adds BOS (tokenizer_config `add_bos_token`, default true). */
  readonly addsBos: boolean;

  constructor(
    private readonly tokenizer: Tokenizer,
    readonly config: Record<string, unknown>,
  ) {
    this.bosToken = tokenString(config.bos_token);
    this.eosToken = tokenString(config.eos_token);
    this.bosTokenId = this.bosToken === null ? null : (tokenizer.token_to_id(this.bosToken) ?? null);
    this.eosTokenId = this.eosToken === null ? null : (tokenizer.token_to_id(this.eosToken) ?? null);
    this.chatTemplate = typeof config.chat_template === 'string' ? config.chat_template : null;
    this.addsBos = config.add_bos_token !== false;
  }

  /** Loads `tokenizer.json` (+ `tokenizer_config.json` when present) from a checkpoint directory. */
  static fromDir(dir: string): LlamaTokenizer {
    const jsonFile = join(dir, 'tokenizer.json');
    if (!existsSync(jsonFile)) {
      throw new InputError(`${jsonFile}: not found (the tokenizer is read from tokenizer.json; convert a SentencePiece tokenizer.model with transformers' LlamaTokenizerFast.save_pretrained)`);
    }
    const configFile = join(dir, 'tokenizer_config.json');
    const config = existsSync(configFile) ? readJson(configFile) : {};
    return LlamaTokenizer.fromJson(readJson(jsonFile), config, jsonFile);
  }

  static fromJson(tokenizerJson: Record<string, unknown>, config: Record<string, unknown>, source = 'tokenizer.json'): LlamaTokenizer {
    let tokenizer: Tokenizer;
    try {
      tokenizer = new Tokenizer(tokenizerJson, config);
    } catch (error) {
      throw new InputError(`${source}: cannot build the tokenizer (${(error as Error).message})`);
    }
    return new LlamaTokenizer(tokenizer, config);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const addSpecial = options.addSpecialTokens ?? true;
    const ids = this.tokenizer.encode(text, { add_special_tokens: addSpecial }).ids;
    // tokenizer.json's post-processor always prepends BOS; `add_bos_token: false` in the config
    // turns it off, as transformers' LlamaTokenizerFast.update_post_processor does.
    if (addSpecial && !this.addsBos && this.bosTokenId !== null && ids[0] === this.bosTokenId) return ids.slice(1);
    return ids;
  }

  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    return this.tokenizer.decode([...ids], { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  idToToken(id: number): string | undefined {
    return this.tokenizer.id_to_token(id);
  }

  /** Renders the chat template to a string (its BOS included, so encode it without special tokens). */
  applyChatTemplate(messages: readonly ChatMessage[], options: { addGenerationPrompt?: boolean } = {}): string {
    if (this.chatTemplate === null) throw new InputError('this tokenizer has no chat_template in tokenizer_config.json (base models have none; use an Instruct checkpoint)');
    const template = new Template(this.chatTemplate);
    // `raise_exception` is a jinja built-in here, as in transformers' sandboxed environment.
    return template.render({
      messages,
      add_generation_prompt: options.addGenerationPrompt ?? false,
      bos_token: this.bosToken ?? '',
      eos_token: this.eosToken ?? '',
    });
  }
}
