// The PEFT method spec of the CLI (`--peft lora:r=8,alpha=16,targets=q_proj+v_proj`), parsed into a
// zod-validated discriminated union. Every default is the one of the method's reference
// implementation, cited where it is defined below. Counting lives in trainable.ts; HF adapter
// directories (`adapter_config.json`) are read by adapter-config.ts into the same union.
//
// Syntax: `<method>[:<key>=<value>[,<key>=<value>...]]`. Lists join with `+` (`targets=q_proj+v_proj`),
// booleans are `true` / `false`.

import { z } from 'zod';
import { InputError } from '../../../results/errors.ts';
import { VISUAL_DEFAULTS } from './visual.ts';

export const PEFT_METHODS = ['lora', 'qlora', 'adapter-v1', 'adapter-v2', 'excitor'] as const;
export type PeftMethod = (typeof PEFT_METHODS)[number];

/**
 * PEFT `LoraConfig` defaults (huggingface/peft src/peft/tuners/lora/config.py): `r: int = 8`,
 * `lora_alpha: int = 8`, `lora_dropout: float = 0.0`, `bias = "none"`, `use_rslora = False`,
 * `use_dora = False`, `lora_bias = False`.
 */
export const LORA_DEFAULTS = { r: 8, alpha: 8, dropout: 0, bias: 'none', rslora: false, dora: false } as const;

/**
 * `target_modules=None` takes the model type's entry of PEFT's
 * `TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING` (src/peft/utils/constants.py):
 * `"llama": ["q_proj", "v_proj"]`, `"llama4": ["q_proj", "v_proj"]`. `mllama` has no entry there
 * (PEFT asks for explicit target_modules); the spec applies the same q_proj+v_proj default to it.
 */
export const LORA_DEFAULT_TARGETS: readonly string[] = ['q_proj', 'v_proj'];

/**
 * artidoro/qlora `qlora.py` defaults: `lora_r = 64`, `lora_alpha = 16`, `lora_dropout = 0.0`, and
 * `find_all_linear_names` (every bnb `Linear4bit` module except `lm_head`, i.e. PEFT's `all-linear`),
 * `bias="none"`; base weights `bits = 4`, `quant_type = "nf4"`, `double_quant = True`. (The Guanaco
 * scripts pass `--lora_dropout 0.1` for 7B/13B and 0.05 for 33B/65B; dropout has no parameters.)
 */
export const QLORA_DEFAULTS = { r: 64, alpha: 16, dropout: 0, bias: 'none', rslora: false, dora: false } as const;

/**
 * LLaMA-Adapter V1 (arXiv 2303.16199 §4.1: "prompt length K = 10 and insert prompts into the last
 * L = 30 layers"; OpenGVLab/LLaMA-Adapter alpaca_finetuning_v1/finetuning.sh `--adapter_layer 30
 * --adapter_len 10`). The official gate is per head: `self.gate = torch.nn.Parameter(torch.zeros(1,
 * self.n_local_heads, 1, 1))` (alpaca_finetuning_v1/llama/model.py; the paper: "we adopt multiple g_l
 * to be independently learned for different heads"). HF PEFT's `AdaptionPrompt` uses one scalar
 * (`adaption_gate = nn.Parameter(torch.zeros(1))`), selected with `gate=scalar`.
 */
export const ADAPTER_V1_DEFAULTS = { layers: 30, len: 10, gate: 'head' } as const;

/**
 * LLaMA-Adapter V2 language model as released: OpenGVLab/LLaMA-Adapter
 * llama_adapter_v2_chat65b/models_llama_adapter.py `Llama65B_bias_scale_norm_tuning =
 * partial(Llama_adapter, add_bias=True, add_scale=True, train_norm=True)` with the default
 * `adapter_len=0, adapter_layer=0` (no adaption prompts; the gates are deleted). `layers`/`len` > 0
 * add the V1-style adaption prompts of the multi-modal model (query_layer=31, query_len=10 there).
 */
export const ADAPTER_V2_DEFAULTS = { layers: 0, len: 0, bias: true, scale: true, norm: true } as const;

/**
 * LLaMA-Excitor (arXiv 2404.00913). NOT VERIFIED: the paper's implementation details and parameter
 * table could not be read from the stored material, and no official code is public in it. The
 * defaults below borrow LLaMA-Adapter's setting (top 30 layers, 10 prompts), which Excitor is
 * compared against; `rank` (the low-rank key projection of the Excitor block) defaults to 0 (none).
 * See trainable.ts for the structure that is counted.
 */
export const EXCITOR_DEFAULTS = { layers: 30, len: 10, rank: 0 } as const;

// ---------------------------------------------------------------------------------------------------
// Schemas

const moduleName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_.]*$/);

export const loraTargetsSchema = z.union([
  z.literal('all-linear'),
  z.array(moduleName).min(1),
  /** A regex string of adapter_config.json `target_modules`, full-matched against module keys. */
  z.strictObject({ regex: z.string().min(1) }),
]);
export type LoraTargets = z.infer<typeof loraTargetsSchema>;

const loraFields = {
  r: z.number().int().positive(),
  alpha: z.number().positive(),
  targets: loraTargetsSchema,
  dropout: z.number().min(0).lt(1),
  rslora: z.boolean(),
  dora: z.boolean(),
  bias: z.enum(['none', 'all', 'lora_only']),
  /** `modules_to_save`: trained as full copies. */
  modulesToSave: z.array(moduleName),
  /** `layers_to_transform` (null: every layer). */
  layersToTransform: z.array(z.number().int().nonnegative()).nullable(),
  /** `layers_pattern` (null: any `<name>.<index>.` segment). */
  layersPattern: z.array(z.string().min(1)).nullable(),
  /** `rank_pattern`: per-module rank overrides, keyed by name or regex. */
  rankPattern: z.record(z.string(), z.number().int().positive()),
  /** `exclude_modules`: names (or one regex). */
  excludeModules: z.union([z.array(z.string().min(1)), z.strictObject({ regex: z.string().min(1) })]).nullable(),
  /** `target_parameters`: fused parameters (Llama 4 routed experts) adapted by lora.ParamWrapper. */
  targetParameters: z.array(moduleName),
  /** `lora_bias`: a bias on lora_B. */
  loraBias: z.boolean(),
  /** The spec string or the adapter_config.json path it came from. */
  source: z.string(),
};

const loraSchema = z.strictObject({ method: z.literal('lora'), ...loraFields });
const qloraSchema = z.strictObject({ method: z.literal('qlora'), ...loraFields });
const adapterV1Schema = z.strictObject({
  method: z.literal('adapter-v1'),
  layers: z.number().int().positive(),
  len: z.number().int().positive(),
  gate: z.enum(['head', 'scalar']),
  source: z.string(),
});
const adapterV2Schema = z.strictObject({
  method: z.literal('adapter-v2'),
  layers: z.number().int().nonnegative(),
  len: z.number().int().nonnegative(),
  bias: z.boolean(),
  scale: z.boolean(),
  norm: z.boolean(),
  /** The multi-modal visual path (harness/peft/visual.ts); absent for the text-only method. */
  visual: z.strictObject({
    dim: z.number().int().positive(),
    depth: z.number().int().nonnegative(),
    heads: z.number().int().positive(),
    mlpHidden: z.number().int().positive(),
  }).optional(),
  source: z.string(),
});
const excitorSchema = z.strictObject({
  method: z.literal('excitor'),
  layers: z.number().int().positive(),
  len: z.number().int().positive(),
  rank: z.number().int().nonnegative(),
  source: z.string(),
});

export const peftSpecSchema = z.discriminatedUnion('method', [loraSchema, qloraSchema, adapterV1Schema, adapterV2Schema, excitorSchema]);
export type PeftSpec = z.infer<typeof peftSpecSchema>;
export type LoraSpec = z.infer<typeof loraSchema> | z.infer<typeof qloraSchema>;
export type AdapterV1Spec = z.infer<typeof adapterV1Schema>;
export type AdapterV2Spec = z.infer<typeof adapterV2Schema>;
export type ExcitorSpec = z.infer<typeof excitorSchema>;

// ---------------------------------------------------------------------------------------------------
// Spec-string keys

type KeyKind = 'int' | 'number' | 'bool' | 'enum' | 'targets' | 'names' | 'ints';

interface KeyDef {
  /** PeftSpec field the key sets. */
  field: string;
  kind: KeyKind;
  /** What a valid value is, for the error message ("a positive integer"). */
  expect: string;
  values?: readonly string[];
}

const LORA_KEYS: Record<string, KeyDef> = {
  r: { field: 'r', kind: 'int', expect: 'a positive integer' },
  alpha: { field: 'alpha', kind: 'number', expect: 'a positive number' },
  targets: { field: 'targets', kind: 'targets', expect: 'all-linear or module names joined with + (q_proj+v_proj)' },
  dropout: { field: 'dropout', kind: 'number', expect: 'a number in [0, 1)' },
  rslora: { field: 'rslora', kind: 'bool', expect: 'true or false' },
  dora: { field: 'dora', kind: 'bool', expect: 'true or false' },
  bias: { field: 'bias', kind: 'enum', expect: 'one of none, all, lora_only', values: ['none', 'all', 'lora_only'] },
  save: { field: 'modulesToSave', kind: 'names', expect: 'module names joined with + (embed_tokens+lm_head)' },
  layers_to_transform: { field: 'layersToTransform', kind: 'ints', expect: 'layer indices joined with + (0+1+2)' },
};

const METHOD_KEYS: Record<PeftMethod, Record<string, KeyDef>> = {
  lora: LORA_KEYS,
  qlora: LORA_KEYS,
  'adapter-v1': {
    layers: { field: 'layers', kind: 'int', expect: 'a positive integer' },
    len: { field: 'len', kind: 'int', expect: 'a positive integer' },
    gate: { field: 'gate', kind: 'enum', expect: 'head or scalar', values: ['head', 'scalar'] },
  },
  'adapter-v2': {
    layers: { field: 'layers', kind: 'int', expect: 'a non-negative integer' },
    len: { field: 'len', kind: 'int', expect: 'a non-negative integer' },
    bias: { field: 'bias', kind: 'bool', expect: 'true or false' },
    scale: { field: 'scale', kind: 'bool', expect: 'true or false' },
    norm: { field: 'norm', kind: 'bool', expect: 'true or false' },
    visual: { field: 'visualOn', kind: 'bool', expect: 'true or false' },
    visual_dim: { field: 'visualDim', kind: 'int', expect: 'a positive integer' },
    visual_depth: { field: 'visualDepth', kind: 'int', expect: 'a non-negative integer' },
    visual_heads: { field: 'visualHeads', kind: 'int', expect: 'a positive integer' },
  },
  excitor: {
    layers: { field: 'layers', kind: 'int', expect: 'a positive integer' },
    len: { field: 'len', kind: 'int', expect: 'a positive integer' },
    rank: { field: 'rank', kind: 'int', expect: 'a non-negative integer' },
  },
};

function defaults(method: PeftMethod, source: string): Record<string, unknown> {
  const loraBase = {
    modulesToSave: [],
    layersToTransform: null,
    layersPattern: null,
    rankPattern: {},
    excludeModules: null,
    targetParameters: [],
    loraBias: false,
    source,
  };
  switch (method) {
    case 'lora':
      return { method, ...LORA_DEFAULTS, targets: [...LORA_DEFAULT_TARGETS], ...loraBase };
    case 'qlora':
      return { method, ...QLORA_DEFAULTS, targets: 'all-linear', ...loraBase };
    case 'adapter-v1':
      return { method, ...ADAPTER_V1_DEFAULTS, source };
    case 'adapter-v2':
      return { method, ...ADAPTER_V2_DEFAULTS, source };
    case 'excitor':
      return { method, ...EXCITOR_DEFAULTS, source };
  }
}

const INT = /^[+-]?\d+$/;
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/**
 * adapter-v2 `visual=true` / `visual_dim` / `visual_depth` / `visual_heads`: the nested `visual` sizes,
 * the release's (VISUAL_DEFAULTS) where not given; without layers/len, the release's query_layer=31,
 * query_len=10 (llama_adapter_v2_multimodal7b `LLaMA_adapter` defaults).
 */
function foldVisual(obj: Record<string, unknown>, given: Map<string, string>, fail: (detail: string) => never): void {
  const { visualOn, visualDim, visualDepth, visualHeads } = obj as { visualOn?: boolean; visualDim?: number; visualDepth?: number; visualHeads?: number };
  delete obj.visualOn;
  delete obj.visualDim;
  delete obj.visualDepth;
  delete obj.visualHeads;
  const sized = visualDim !== undefined || visualDepth !== undefined || visualHeads !== undefined;
  if (visualOn === false) {
    if (sized) fail('visual_dim/visual_depth/visual_heads need visual=true (or drop visual=false)');
    return;
  }
  if (visualOn !== true && !sized) return;
  const dim = visualDim ?? VISUAL_DEFAULTS.dim;
  const heads = visualHeads ?? VISUAL_DEFAULTS.heads;
  if (dim % heads !== 0) fail(`visual_dim ${dim} must be divisible by visual_heads ${heads}`);
  obj.visual = { dim, depth: visualDepth ?? VISUAL_DEFAULTS.depth, heads, mlpHidden: Math.trunc(dim * VISUAL_DEFAULTS.mlpRatio) };
  if (!given.has('layers') && !given.has('len')) Object.assign(obj, { layers: 31, len: 10 });
  if (obj.layers === 0) fail('the visual path adds to the adaption prompts: it needs layers and len > 0');
}

/** Converts one raw value, or returns the reason it is not of the key's kind. */
function convert(def: KeyDef, raw: string): { value: unknown } | { error: string } {
  switch (def.kind) {
    case 'int':
      return INT.test(raw) ? { value: Number(raw) } : { error: 'not an integer' };
    case 'number':
      return NUMBER.test(raw) ? { value: Number(raw) } : { error: 'not a number' };
    case 'bool':
      return raw === 'true' ? { value: true } : raw === 'false' ? { value: false } : { error: 'not a boolean' };
    case 'enum':
      return def.values!.includes(raw) ? { value: raw } : { error: 'not an allowed value' };
    case 'targets': {
      // PEFT compares the shorthand case-insensitively (`target_modules.lower() == "all-linear"`).
      if (raw.toLowerCase() === 'all-linear') return { value: 'all-linear' };
      const names = raw.split('+');
      const bad = names.find((n) => !/^[A-Za-z_][A-Za-z0-9_.]*$/.test(n));
      return bad === undefined ? { value: names } : { error: bad === '' ? 'empty name' : `bad name "${bad}"` };
    }
    case 'names': {
      const names = raw.split('+');
      const bad = names.find((n) => !/^[A-Za-z_][A-Za-z0-9_.]*$/.test(n));
      return bad === undefined ? { value: names } : { error: bad === '' ? 'empty name' : `bad name "${bad}"` };
    }
    case 'ints': {
      const parts = raw.split('+');
      return parts.every((p) => /^\d+$/.test(p)) ? { value: parts.map(Number) } : { error: 'not integers' };
    }
  }
}

/** Parses a CLI PEFT spec string. Errors are InputErrors naming the offending key. */
export function parsePeftSpec(spec: string): PeftSpec {
  const fail = (detail: string): never => {
    throw new InputError(`bad PEFT spec "${spec}": ${detail}`);
  };
  const text = spec.trim();
  const colon = text.indexOf(':');
  const methodName = (colon < 0 ? text : text.slice(0, colon)).trim().toLowerCase();
  const body = colon < 0 ? '' : text.slice(colon + 1).trim();
  if (!(PEFT_METHODS as readonly string[]).includes(methodName)) {
    fail(`unknown method "${methodName}" (supported: ${PEFT_METHODS.join(', ')})`);
  }
  const method = methodName as PeftMethod;
  const keys = METHOD_KEYS[method];
  const keyList = Object.keys(keys).join(', ');
  const obj = defaults(method, spec);
  const given = new Map<string, string>();
  for (const item of body === '' ? [] : body.split(',')) {
    const eq = item.indexOf('=');
    if (eq < 0) fail(`expected key=value, got "${item.trim()}" (keys for ${method}: ${keyList})`);
    const key = item.slice(0, eq).trim();
    const raw = item.slice(eq + 1).trim();
    const def = keys[key];
    if (!def) fail(`unknown key "${key}" for ${method} (keys: ${keyList})`);
    if (given.has(key)) fail(`key "${key}" given twice`);
    given.set(key, raw);
    const converted = convert(def!, raw);
    if ('error' in converted) fail(`${key} must be ${def!.expect}, got "${raw}"`);
    obj[def!.field] = (converted as { value: unknown }).value;
  }
  if (method === 'adapter-v2') foldVisual(obj, given, fail);
  const parsed = peftSpecSchema.safeParse(obj);
  if (!parsed.success) {
    const field = String(parsed.error.issues[0]!.path[0] ?? '');
    const key = Object.keys(keys).find((k) => keys[k]!.field === field) ?? field;
    const def = keys[key];
    fail(`${key} must be ${def ? def.expect : 'valid'}, got "${given.get(key) ?? String(obj[field])}"`);
  }
  const result = parsed.data!;
  if (result.method === 'adapter-v2' && (result.layers > 0) !== (result.len > 0)) {
    // Adaption prompts need both a layer count and a length (adapter_query = nn.Embedding(len * layers, dim)).
    const missing = result.layers > 0 ? 'len' : 'layers';
    fail(`${missing} must be a positive integer when ${missing === 'len' ? 'layers' : 'len'} > 0 (adaption prompts need both)`);
  }
  return result;
}

/** Validates a PeftSpec built elsewhere (adapter-config.ts), naming `source` and the bad field on failure. */
export function validatePeftSpec(obj: Record<string, unknown>, source: string): PeftSpec {
  const parsed = peftSpecSchema.safeParse(obj);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new InputError(`${source}: bad value for ${issue.path.map(String).join('.') || 'spec'}: ${issue.message}`);
  }
  return parsed.data;
}

/** A short human label: `lora r=8 alpha=16 targets=q_proj+v_proj`. */
export function peftLabel(spec: PeftSpec): string {
  switch (spec.method) {
    case 'lora':
    case 'qlora': {
      const t = spec.targets;
      const targets = t === 'all-linear' ? 'all-linear' : Array.isArray(t) ? t.join('+') : `/${t.regex}/`;
      const extras = [spec.dora ? 'dora' : '', spec.rslora ? 'rslora' : '', spec.bias !== 'none' ? `bias=${spec.bias}` : ''].filter(Boolean);
      return [`${spec.method} r=${spec.r} alpha=${spec.alpha} targets=${targets}`, ...extras].join(' ');
    }
    case 'adapter-v1':
      return `adapter-v1 layers=${spec.layers} len=${spec.len} gate=${spec.gate}`;
    case 'adapter-v2':
      return `adapter-v2 layers=${spec.layers} len=${spec.len} bias=${spec.bias} scale=${spec.scale} norm=${spec.norm}${
        spec.visual ? ` visual dim=${spec.visual.dim} depth=${spec.visual.depth} heads=${spec.visual.heads}` : ''}`;
    case 'excitor':
      return `excitor layers=${spec.layers} len=${spec.len} rank=${spec.rank}`;
  }
}
