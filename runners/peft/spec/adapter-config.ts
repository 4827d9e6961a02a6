// An HF PEFT adapter directory (`adapter_config.json`, as `PeftModel.save_pretrained` writes it) read into
// the same PeftSpec the CLI spec string gives. Field meanings and defaults are PEFT's: `LoraConfig`
// (src/peft/tuners/lora/config.py) and `AdaptionPromptConfig` (src/peft/tuners/adaption_prompt/config.py).
// A QLoRA adapter is saved as peft_type LORA (the 4-bit base is a property of the base model load, not of
// the adapter), so it reads as `lora`.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { InputError } from '../../../results/errors.ts';
import { officialReleaseArg, readOfficialRelease } from './official.ts';
import { LORA_DEFAULT_TARGETS, LORA_DEFAULTS, parsePeftSpec, validatePeftSpec, type PeftSpec } from './spec.ts';

export const SUPPORTED_PEFT_TYPES = ['LORA', 'ADAPTION_PROMPT'] as const;

const intOrList = z.union([z.number().int().nonnegative(), z.array(z.number().int().nonnegative())]);
const strOrList = z.union([z.string(), z.array(z.string())]);

const loraConfigSchema = z
  .object({
    r: z.number().int().positive().optional(),
    lora_alpha: z.number().positive().optional(),
    target_modules: strOrList.nullable().optional(),
    exclude_modules: strOrList.nullable().optional(),
    lora_dropout: z.number().min(0).lt(1).optional(),
    use_rslora: z.boolean().optional(),
    use_dora: z.boolean().optional(),
    fan_in_fan_out: z.boolean().optional(),
    bias: z.enum(['none', 'all', 'lora_only']).optional(),
    modules_to_save: z.array(z.string()).nullable().optional(),
    layers_to_transform: intOrList.nullable().optional(),
    layers_pattern: strOrList.nullable().optional(),
    rank_pattern: z.record(z.string(), z.number().int().positive()).nullable().optional(),
    alpha_pattern: z.record(z.string(), z.number()).nullable().optional(),
    target_parameters: z.array(z.string()).nullable().optional(),
    lora_bias: z.boolean().optional(),
    layer_replication: z.unknown().optional(),
    trainable_token_indices: z.unknown().optional(),
  })
  .passthrough();

const adaptionPromptSchema = z
  .object({
    adapter_len: z.number().int().positive(),
    adapter_layers: z.number().int().positive(),
    target_modules: z.string().nullable().optional(),
  })
  .passthrough();

function fieldError(path: string, error: z.ZodError): InputError {
  const issue = error.issues[0]!;
  const field = issue.path.map(String).join('.');
  const missing = issue.code === 'invalid_type' && /received undefined/.test(issue.message);
  return new InputError(`${path}: ${missing ? `missing field ${field}` : `bad field ${field}: ${issue.message}`}`);
}

/** Converts a parsed adapter_config.json object; `path` names the file in errors. */
export function adapterConfigToSpec(config: unknown, path: string): PeftSpec {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new InputError(`${path}: expected a JSON object`);
  }
  const obj = config as Record<string, unknown>;
  const peftType = obj.peft_type;
  if (typeof peftType !== 'string') {
    throw new InputError(`${path}: missing field peft_type (supported: ${SUPPORTED_PEFT_TYPES.join(', ')})`);
  }
  if (peftType === 'LORA') {
    const parsed = loraConfigSchema.safeParse(obj);
    if (!parsed.success) throw fieldError(path, parsed.error);
    const c = parsed.data;
    if (c.layer_replication != null) {
      throw new InputError(`${path}: layer_replication is not supported (it duplicates decoder layers; count the expanded model instead)`);
    }
    if (c.trainable_token_indices != null) {
      throw new InputError(`${path}: trainable_token_indices is not supported`);
    }
    // lora_dropout, use_rslora (scaling alpha/sqrt(r)), fan_in_fan_out and alpha_pattern change no
    // parameter shape; they are kept for the report only.
    const tm = c.target_modules;
    // A string target_modules is a regex full-matched against module names, except the `all-linear`
    // shorthand (PEFT lowercases before comparing). `null` takes PEFT's per-model-type default.
    const targets = tm == null ? [...LORA_DEFAULT_TARGETS]
      : typeof tm === 'string' ? (tm.toLowerCase() === 'all-linear' ? 'all-linear' : { regex: tm })
      : tm;
    const em = c.exclude_modules;
    const lt = c.layers_to_transform;
    const lp = c.layers_pattern;
    return validatePeftSpec({
      method: 'lora',
      r: c.r ?? LORA_DEFAULTS.r,
      alpha: c.lora_alpha ?? LORA_DEFAULTS.alpha,
      targets,
      dropout: c.lora_dropout ?? LORA_DEFAULTS.dropout,
      rslora: c.use_rslora ?? false,
      dora: c.use_dora ?? false,
      bias: c.bias ?? 'none',
      modulesToSave: c.modules_to_save ?? [],
      layersToTransform: lt == null ? null : typeof lt === 'number' ? [lt] : lt,
      layersPattern: lp == null || lp.length === 0 ? null : typeof lp === 'string' ? [lp] : lp,
      rankPattern: c.rank_pattern ?? {},
      excludeModules: em == null ? null : typeof em === 'string' ? { regex: em } : em,
      targetParameters: c.target_parameters ?? [],
      loraBias: c.lora_bias ?? false,
      source: path,
    }, path);
  }
  if (peftType === 'ADAPTION_PROMPT') {
    const parsed = adaptionPromptSchema.safeParse(obj);
    if (!parsed.success) throw fieldError(path, parsed.error);
    const c = parsed.data;
    // PEFT's llama entry of TRANSFORMERS_MODEL_CONFIG: target_modules "self_attn".
    if (c.target_modules != null && c.target_modules !== 'self_attn') {
      throw new InputError(`${path}: target_modules "${c.target_modules}" is not a LLaMA attention module (expected "self_attn")`);
    }
    // PEFT's AdaptedAttention: adaption_prompt (1, adapter_len, hidden) + ONE scalar adaption_gate.
    return validatePeftSpec({ method: 'adapter-v1', layers: c.adapter_layers, len: c.adapter_len, gate: 'scalar', source: path }, path);
  }
  throw new InputError(`${path}: unsupported peft_type "${peftType}" (supported: ${SUPPORTED_PEFT_TYPES.join(', ')})`);
}

/** Reads `<dir>/adapter_config.json`. */
export function readAdapterConfig(dir: string): PeftSpec {
  const path = resolve(join(dir, 'adapter_config.json'));
  if (!existsSync(path)) {
    throw new InputError(`missing ${path} (an HF PEFT adapter directory holds adapter_config.json)`);
  }
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new InputError(`${path}: not valid JSON (${(error as Error).message})`);
  }
  return adapterConfigToSpec(json, path);
}

/**
 * `--peft` argument: an existing directory is an HF PEFT adapter directory, anything else a spec
 * string. A path-like argument (with a slash) that does not exist is reported as a missing directory.
 */
export function parsePeft(arg: string): PeftSpec {
  // An official LLaMA-Adapter release (`file.pth[:layers=N]`, official.ts).
  if (officialReleaseArg(arg)) return readOfficialRelease(arg).spec;
  const exists = existsSync(arg);
  if (exists && statSync(arg).isDirectory()) return readAdapterConfig(arg);
  if (exists && basename(arg) === 'adapter_config.json') return readAdapterConfig(dirname(arg));
  if (/[\\/]/.test(arg)) {
    throw new InputError(exists
      ? `${resolve(arg)} is not an HF PEFT adapter directory (expected a directory holding adapter_config.json)`
      : `PEFT adapter directory ${resolve(arg)} does not exist`);
  }
  return parsePeftSpec(arg);
}
