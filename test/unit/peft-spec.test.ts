// PEFT spec parsing (CLI strings and HF adapter_config.json) and the name-matching mechanics of the
// trainable count. Expected defaults and shapes cite the reference code that defines them:
// huggingface/peft (src/peft/tuners/lora/config.py, layer.py, dora.py, tuners_utils.py,
// adaption_prompt/*), artidoro/qlora qlora.py, OpenGVLab/LLaMA-Adapter.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../runners/arch.ts';
import { InputError } from '../../harness/errors.ts';
import { countTrainable, parsePeft, parsePeftSpec, readAdapterConfig, type PeftSpec } from '../../harness/peft/index.ts';

/** The thrown error, asserted to be a one-line InputError (exit code 2). */
function inputError(fn: () => unknown): InputError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    const e = error as InputError;
    expect(e.exitCode).toBe(2);
    expect(e.message).not.toContain('\n');
    return e;
  }
  throw new Error('expected an InputError');
}

const tmp = mkdtempSync(join(tmpdir(), 'peft-spec-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function adapterDir(name: string, config: unknown): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'adapter_config.json'), typeof config === 'string' ? config : JSON.stringify(config, null, 2));
  return dir;
}

describe('parsePeftSpec: defaults', () => {
  it('lora defaults are PEFT LoraConfig: r=8, lora_alpha=8, dropout 0, bias none, q_proj+v_proj for llama', () => {
    // LoraConfig: `r: int = 8`, `lora_alpha: int = 8`, `lora_dropout: float = 0.0`, `bias = "none"`;
    // TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING["llama"] = ["q_proj", "v_proj"].
    const s = parsePeftSpec('lora');
    expect(s).toMatchObject({ method: 'lora', r: 8, alpha: 8, dropout: 0, bias: 'none', rslora: false, dora: false, targets: ['q_proj', 'v_proj'], modulesToSave: [] });
  });

  it('parses the README example', () => {
    const s = parsePeftSpec('lora:r=8,alpha=16,targets=q_proj+v_proj');
    expect(s).toMatchObject({ method: 'lora', r: 8, alpha: 16, targets: ['q_proj', 'v_proj'] });
  });

  it('accepts all-linear case-insensitively, like PEFT (`target_modules.lower() == "all-linear"`)', () => {
    expect(parsePeftSpec('lora:targets=ALL-LINEAR')).toMatchObject({ targets: 'all-linear' });
  });

  it('parses every optional LoRA key', () => {
    const s = parsePeftSpec('lora:r=16,alpha=32,dropout=0.05,rslora=true,dora=true,bias=lora_only,save=embed_tokens+lm_head,layers_to_transform=0+1');
    expect(s).toMatchObject({ r: 16, alpha: 32, dropout: 0.05, rslora: true, dora: true, bias: 'lora_only', modulesToSave: ['embed_tokens', 'lm_head'], layersToTransform: [0, 1] });
  });

  it('qlora defaults are artidoro/qlora: lora_r=64, lora_alpha=16, all linear layers but lm_head', () => {
    // qlora.py: `lora_r: int = 64`, `lora_alpha: float = 16`, `lora_dropout: float = 0.0`,
    // find_all_linear_names() removes 'lm_head'.
    expect(parsePeftSpec('qlora')).toMatchObject({ method: 'qlora', r: 64, alpha: 16, dropout: 0, targets: 'all-linear' });
    expect(parsePeftSpec('qlora:r=64,alpha=16,targets=all-linear')).toEqual(parsePeftSpec('qlora:r=64,alpha=16,targets=all-linear'));
  });

  it('adapter-v1 defaults are the paper / official script: L=30 layers, K=10 prompts, per-head gates', () => {
    // arXiv 2303.16199 §4.1 "prompt length K = 10 ... last L = 30 layers"; finetuning.sh
    // `--adapter_layer 30 --adapter_len 10`; model.py gate zeros(1, n_local_heads, 1, 1).
    expect(parsePeftSpec('adapter-v1')).toMatchObject({ method: 'adapter-v1', layers: 30, len: 10, gate: 'head' });
    expect(parsePeftSpec('adapter-v1:layers=30,len=10,gate=scalar')).toMatchObject({ layers: 30, len: 10, gate: 'scalar' });
  });

  it('adapter-v2 defaults are the released bias-scale-norm tuning (no adaption prompts)', () => {
    // llama_adapter_v2_chat65b: Llama65B_bias_scale_norm_tuning = partial(Llama_adapter,
    // add_bias=True, add_scale=True, train_norm=True), adapter_len=0, adapter_layer=0.
    expect(parsePeftSpec('adapter-v2')).toMatchObject({ method: 'adapter-v2', layers: 0, len: 0, bias: true, scale: true, norm: true });
    expect(parsePeftSpec('adapter-v2:layers=31,len=10')).toMatchObject({ layers: 31, len: 10 });
  });

  it('excitor parses with its (unverified) defaults', () => {
    expect(parsePeftSpec('excitor')).toMatchObject({ method: 'excitor', layers: 30, len: 10, rank: 0 });
    expect(parsePeftSpec('excitor:rank=16')).toMatchObject({ rank: 16 });
  });
});

describe('parsePeftSpec: every error names the key', () => {
  it('unknown key lists the method keys', () => {
    expect(inputError(() => parsePeftSpec('lora:rr=8')).message).toBe(
      'bad PEFT spec "lora:rr=8": unknown key "rr" for lora (keys: r, alpha, targets, dropout, rslora, dora, bias, save, layers_to_transform)',
    );
  });

  it('unknown method lists the supported ones', () => {
    expect(inputError(() => parsePeftSpec('prefix:r=8')).message).toBe(
      'bad PEFT spec "prefix:r=8": unknown method "prefix" (supported: lora, qlora, adapter-v1, adapter-v2, excitor)',
    );
  });

  it.each([
    ['lora:r=8.5', 'r must be a positive integer, got "8.5"'],
    ['lora:r=0', 'r must be a positive integer, got "0"'],
    ['lora:r=-4', 'r must be a positive integer, got "-4"'],
    ['lora:alpha=big', 'alpha must be a positive number, got "big"'],
    ['lora:dropout=1', 'dropout must be a number in [0, 1), got "1"'],
    ['lora:dora=yes', 'dora must be true or false, got "yes"'],
    ['lora:bias=some', 'bias must be one of none, all, lora_only, got "some"'],
    ['lora:targets=q_proj++v_proj', 'targets must be all-linear or module names joined with + (q_proj+v_proj), got "q_proj++v_proj"'],
    ['lora:layers_to_transform=1+x', 'layers_to_transform must be layer indices joined with + (0+1+2), got "1+x"'],
    ['qlora:r=1e3', 'r must be a positive integer, got "1e3"'],
    ['adapter-v1:layers=0', 'layers must be a positive integer, got "0"'],
    ['adapter-v1:gate=channel', 'gate must be head or scalar, got "channel"'],
    ['adapter-v2:norm=1', 'norm must be true or false, got "1"'],
    ['excitor:rank=-1', 'rank must be a non-negative integer, got "-1"'],
  ])('%s', (spec, detail) => {
    expect(inputError(() => parsePeftSpec(spec)).message).toBe(`bad PEFT spec "${spec}": ${detail}`);
  });

  it('a key without a value, a repeated key, and half-specified adaption prompts are named', () => {
    expect(inputError(() => parsePeftSpec('lora:r')).message).toMatch(/expected key=value, got "r"/);
    expect(inputError(() => parsePeftSpec('lora:r=8,r=16')).message).toMatch(/key "r" given twice/);
    expect(inputError(() => parsePeftSpec('adapter-v2:layers=31')).message).toMatch(/len must be a positive integer when layers > 0/);
    expect(inputError(() => parsePeftSpec('adapter-v2:len=10')).message).toMatch(/layers must be a positive integer when len > 0/);
  });
});

describe('readAdapterConfig', () => {
  it('reads a LORA adapter_config.json (list target_modules, rslora, dora, modules_to_save...)', () => {
    // Field names as PeftModel.save_pretrained writes a LoraConfig.
    const dir = adapterDir('lora', {
      base_model_name_or_path: 'huggyllama/llama-7b',
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      r: 16,
      lora_alpha: 32,
      lora_dropout: 0.05,
      target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
      use_rslora: true,
      use_dora: true,
      fan_in_fan_out: false,
      bias: 'lora_only',
      modules_to_save: ['lm_head'],
      layers_to_transform: [0, 1, 2],
      layers_pattern: null,
      rank_pattern: {},
      alpha_pattern: {},
      inference_mode: true,
    });
    const s = readAdapterConfig(dir);
    expect(s).toMatchObject({
      method: 'lora', r: 16, alpha: 32, dropout: 0.05, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
      rslora: true, dora: true, bias: 'lora_only', modulesToSave: ['lm_head'], layersToTransform: [0, 1, 2],
      source: resolve(dir, 'adapter_config.json'),
    });
  });

  it('a string target_modules is a regex, except the all-linear shorthand; null takes the llama default', () => {
    const regex = readAdapterConfig(adapterDir('lora-regex', { peft_type: 'LORA', r: 8, lora_alpha: 16, target_modules: '.*\\.(q_proj|v_proj)' }));
    expect(regex).toMatchObject({ targets: { regex: '.*\\.(q_proj|v_proj)' } });
    const allLinear = readAdapterConfig(adapterDir('lora-all', { peft_type: 'LORA', r: 64, lora_alpha: 16, target_modules: 'all-linear' }));
    expect(allLinear).toMatchObject({ targets: 'all-linear' });
    const dflt = readAdapterConfig(adapterDir('lora-default', { peft_type: 'LORA', target_modules: null }));
    expect(dflt).toMatchObject({ r: 8, alpha: 8, targets: ['q_proj', 'v_proj'] });
  });

  it('reads an ADAPTION_PROMPT adapter_config.json as adapter-v1 with PEFT\'s scalar gate', () => {
    // AdaptionPromptConfig: adapter_len, adapter_layers, target_modules ("self_attn" for llama).
    const dir = adapterDir('adaption', { peft_type: 'ADAPTION_PROMPT', task_type: 'CAUSAL_LM', adapter_len: 10, adapter_layers: 30, target_modules: 'self_attn' });
    expect(readAdapterConfig(dir)).toMatchObject({ method: 'adapter-v1', layers: 30, len: 10, gate: 'scalar' });
  });

  it('an unknown peft_type lists the supported ones', () => {
    const dir = adapterDir('ia3', { peft_type: 'IA3', target_modules: ['k_proj'] });
    const path = resolve(dir, 'adapter_config.json');
    expect(inputError(() => readAdapterConfig(dir)).message).toBe(`${path}: unsupported peft_type "IA3" (supported: LORA, ADAPTION_PROMPT)`);
  });

  it('a missing adapter_config.json is reported with its exact path', () => {
    const dir = join(tmp, 'empty');
    mkdirSync(dir, { recursive: true });
    const path = resolve(dir, 'adapter_config.json');
    expect(inputError(() => readAdapterConfig(dir)).message).toBe(`missing ${path} (an HF PEFT adapter directory holds adapter_config.json)`);
  });

  it('bad JSON and bad fields name the file and the field', () => {
    const broken = adapterDir('broken', '{ "peft_type": "LORA", ');
    expect(inputError(() => readAdapterConfig(broken)).message).toMatch(/adapter_config\.json: not valid JSON/);
    const badR = adapterDir('bad-r', { peft_type: 'LORA', r: 'eight' });
    expect(inputError(() => readAdapterConfig(badR)).message).toMatch(/adapter_config\.json: bad field r/);
    const noLen = adapterDir('no-len', { peft_type: 'ADAPTION_PROMPT', adapter_layers: 30 });
    expect(inputError(() => readAdapterConfig(noLen)).message).toMatch(/adapter_config\.json: missing field adapter_len/);
  });
});

describe('parsePeft', () => {
  it('an existing directory is an adapter, anything else a spec string', () => {
    const dir = adapterDir('parse-peft', { peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: ['q_proj'] });
    expect(parsePeft(dir)).toMatchObject({ method: 'lora', r: 4, targets: ['q_proj'] });
    expect(parsePeft('adapter-v1:layers=30,len=10')).toMatchObject({ method: 'adapter-v1' });
    const missing = join(tmp, 'no-such-adapter');
    expect(inputError(() => parsePeft(missing)).message).toBe(`PEFT adapter directory ${resolve(missing)} does not exist`);
  });

  it('accepts the adapter_config.json file itself', () => {
    const dir = adapterDir('parse-peft-file', { peft_type: 'ADAPTION_PROMPT', adapter_len: 4, adapter_layers: 2 });
    expect(parsePeft(join(dir, 'adapter_config.json'))).toMatchObject({ method: 'adapter-v1', layers: 2, len: 4, gate: 'scalar' });
  });
});

// ---------------------------------------------------------------------------------------------------
// Counting mechanics on small made-up configs. Shapes: lora.Linear has lora_A (r, in) + lora_B (out, r);
// DoRA's lora_magnitude_vector has out_features entries (dora.py: norm over dim=1 of (out, in)).

const tiny = parseModelConfig({
  model_type: 'llama', vocab_size: 1000, hidden_size: 64, intermediate_size: 128,
  num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2,
}, 'tiny').text;
// q: 64->64, k/v: 64->32 (2 kv heads x 16), o: 64->64, gate/up: 64->128, down: 128->64.

type LoraOnly = Extract<PeftSpec, { method: 'lora' }>;
const loraSpec = (spec: string) => parsePeftSpec(spec) as LoraOnly;

function count(spec: string | PeftSpec, arch = tiny) {
  return countTrainable(typeof spec === 'string' ? parsePeftSpec(spec) : spec, arch);
}

describe('countTrainable: LoRA name matching as PEFT does it', () => {
  it('q_proj+v_proj: r*(in+out) per module per layer', () => {
    expect(count('lora:r=2,targets=q_proj+v_proj').trainable).toBe(4 * 2 * ((64 + 64) + (64 + 32)));
  });

  it('all-linear is every Linear but lm_head; DoRA adds out_features per module', () => {
    const perLayer = (64 + 64) + (64 + 32) * 2 + (64 + 64) + (64 + 128) * 2 + (128 + 64);
    expect(count('lora:r=2,targets=all-linear').trainable).toBe(4 * 2 * perLayer);
    const magnitude = 4 * (64 + 32 + 32 + 64 + 128 + 128 + 64);
    const dora = count('lora:r=2,targets=all-linear,dora=true');
    expect(dora.trainable).toBe(4 * 2 * perLayer + magnitude);
    expect(dora.components['dora.magnitude']).toBe(magnitude);
    // lm_head is targetable by name (explicit targets), not by all-linear.
    expect(count('lora:r=2,targets=lm_head').trainable).toBe(2 * (64 + 1000));
  });

  it('a target name that matches nothing is an InputError naming it and the available names', () => {
    const e = inputError(() => count('lora:targets=q_proj+qkv_proj'));
    expect(e.message).toBe('LoRA target modules qkv_proj not found in the model (targetable: embed_tokens, q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, lm_head)');
    expect(inputError(() => count('lora:targets=input_layernorm')).message).toMatch(/is an RMSNorm/);
  });

  it('dotted suffixes and full keys match, as `key.endswith(f".{target}")` does', () => {
    expect(count('lora:r=2,targets=self_attn.q_proj').trainable).toBe(count('lora:r=2,targets=q_proj').trainable);
    const one: PeftSpec = { ...loraSpec('lora:r=2'), targets: ['model.layers.3.self_attn.q_proj'] };
    expect(count(one).trainable).toBe(2 * (64 + 64));
  });

  it('layers_to_transform keeps the listed layer indices', () => {
    expect(count('lora:r=2,targets=q_proj,layers_to_transform=0+3').trainable).toBe(2 * 2 * (64 + 64));
    expect(inputError(() => count('lora:targets=all-linear,layers_to_transform=0')).message).toMatch(/layers_to_transform/);
  });

  it('bias=all unfreezes every *.bias; bias=lora_only the biases of wrapped modules', () => {
    const biased = parseModelConfig({
      model_type: 'llama', vocab_size: 1000, hidden_size: 64, intermediate_size: 128,
      num_hidden_layers: 2, num_attention_heads: 4, attention_bias: true,
    }, 'biased').text;
    const lora = 2 * 2 * ((64 + 64) * 2);
    const all = count('lora:r=2,bias=all', biased);
    expect(all.trainable).toBe(lora + 2 * 4 * 64); // q k v o biases of both layers
    expect(all.added).toBe(lora);
    expect(count('lora:r=2,bias=lora_only', biased).trainable).toBe(lora + 2 * 2 * 64); // q and v only
    expect(count('lora:r=2,bias=all').trainable).toBe(count('lora:r=2').trainable); // no biases in LLaMA
  });

  it('modules_to_save adds a full trainable copy and removes the module from LoRA targeting', () => {
    const c = count('lora:r=2,targets=q_proj+v_proj,save=lm_head+v_proj');
    expect(c.components['modules_to_save.lm_head']).toBe(64 * 1000);
    expect(c.components['modules_to_save.v_proj']).toBe(4 * 64 * 32);
    expect(c.components['lora.v_proj']).toBeUndefined();
    expect(c.trainable).toBe(4 * 2 * (64 + 64) + 64 * 1000 + 4 * 64 * 32);
    expect(inputError(() => count('lora:save=classifier')).message).toMatch(/modules_to_save classifier not found/);
  });

  it('adapter_config fields: regex targets, rank_pattern, exclude_modules, lora_bias', () => {
    const base = loraSpec('lora:r=2');
    const regex: PeftSpec = { ...base, targets: { regex: '.*\\.layers\\.[01]\\.self_attn\\.(q|v)_proj' } };
    expect(count(regex).trainable).toBe(2 * 2 * ((64 + 64) + (64 + 32)));
    const ranked: PeftSpec = { ...base, rankPattern: { v_proj: 4 } };
    expect(count(ranked).trainable).toBe(4 * (2 * (64 + 64) + 4 * (64 + 32)));
    const excluded: PeftSpec = { ...base, targets: 'all-linear', excludeModules: ['down_proj', 'up_proj', 'gate_proj'] };
    expect(count(excluded).trainable).toBe(4 * 2 * ((64 + 64) * 2 + (64 + 32) * 2));
    expect(inputError(() => count({ ...base, targets: { regex: 'q_proj(' } })).message).toMatch(/^bad target_modules regex "q_proj\(":/);
    expect(inputError(() => count({ ...base, rankPattern: { '[': 4 } })).message).toMatch(/^bad rank_pattern regex/);
    const lb: PeftSpec = { ...base, loraBias: true };
    expect(count(lb).trainable).toBe(4 * (2 * (64 + 64) + 2 * (64 + 32) + 64 + 32));
  });

  it('sums components to trainable for every method', () => {
    for (const spec of ['lora', 'qlora', 'lora:dora=true,bias=all,save=embed_tokens', 'adapter-v1:layers=4', 'adapter-v2:layers=3,len=5', 'excitor:layers=2,rank=4']) {
      const c = count(spec);
      expect(Object.values(c.components).reduce((a, b) => a + b, 0)).toBe(c.trainable);
    }
  });
});

describe('countTrainable: LLaMA 4 and Mllama modules', () => {
  const llama4 = parseModelConfig({
    model_type: 'llama4',
    text_config: {
      vocab_size: 1000, hidden_size: 64, intermediate_size: 32, intermediate_size_mlp: 128,
      num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16,
      num_local_experts: 4, num_experts_per_tok: 1, interleave_moe_layer_step: 2,
    },
    vision_config: {},
  }, 'llama4').text;
  // Layer 0 dense (feed_forward = Llama4TextMLP, 64->128->64); layer 1 MoE: router 64->4,
  // shared_expert 64->32->64, experts gate_up_proj (4, 64, 64) and down_proj (4, 32, 64).

  it('all-linear reaches the router (an nn.Linear subclass) and the shared expert, never the fused experts', () => {
    const attn = (64 + 64) + (64 + 32) * 2 + (64 + 64);
    const dense = (64 + 128) * 2 + (128 + 64);
    const moe = (64 + 4) + (64 + 32) * 2 + (32 + 64);
    expect(count('lora:r=2,targets=all-linear', llama4).trainable).toBe(2 * (2 * attn + dense + moe));
  });

  it('target_parameters adapts the fused experts: lora.ParamWrapper gives r*E*(d1+d2)', () => {
    const base = loraSpec('lora:r=2,targets=q_proj');
    const spec: PeftSpec = { ...base, targetParameters: ['feed_forward.experts.gate_up_proj', 'feed_forward.experts.down_proj'] };
    const c = count(spec, llama4);
    expect(c.components['lora.experts.gate_up_proj']).toBe(2 * 4 * (64 + 64));
    expect(c.components['lora.experts.down_proj']).toBe(2 * 4 * (32 + 64));
    expect(inputError(() => count({ ...spec, dora: true }, llama4)).message).toMatch(/DoRA/);
    expect(inputError(() => count(spec)).message).toMatch(/no routed experts/);
  });

  it('Mllama: q_proj matches self_attn and cross_attn; adapters skip cross-attention layers', () => {
    const mllama = parseModelConfig({
      model_type: 'mllama',
      text_config: { vocab_size: 1000, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2, cross_attention_layers: [1] },
      vision_config: {},
    }, 'mllama').text;
    expect(count('lora:r=2,targets=q_proj', mllama).trainable).toBe(4 * 2 * (64 + 64));
    expect(count('lora:r=2,targets=cross_attn.q_proj', mllama).trainable).toBe(2 * (64 + 64));
    // AdaptionPromptModel takes the modules named "self_attn": 3 of the 4 layers.
    expect(count('adapter-v1:layers=3,len=2', mllama).trainable).toBe(3 * (2 * 64 + 4));
    expect(inputError(() => count('adapter-v1:layers=4,len=2', mllama)).message).toBe('adapter-v1 layers=4 is more than the model\'s 3 self-attention layers');
  });
});
