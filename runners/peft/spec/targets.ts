// PEFT's LoRA target matching on a LLaMA-family text model (huggingface/peft src/peft/tuners/lora,
// tuners_utils.py check_target_module_exists / get_pattern_key): which module instances an adapter
// wraps and at which rank. Used by the runners (applying adapters) and by harness/peft's counts.

import type { TextArch } from '../../arch.ts';
import { InputError } from '../../../results/errors.ts';
import { moduleInstances, type ModuleInstance } from './modules.ts';
import type { LoraSpec } from './spec.ts';

/** Compiles a regex taken from a spec or adapter_config.json, as an InputError naming the field if invalid. */
function compile(source: string, pattern: string, what: string): RegExp {
  try {
    return new RegExp(source);
  } catch (error) {
    throw new InputError(`bad ${what} regex "${pattern}": ${(error as Error).message}`);
  }
}

/** Python `re.fullmatch(pattern, key)`. */
function fullMatch(pattern: string, key: string, what: string): boolean {
  return compile(`^(?:${pattern})$`, pattern, what).test(key);
}

/** PEFT's name match of a list entry: the full key, or a dotted suffix of it (`key.endswith(f".{target}")`). */
export function nameMatches(key: string, target: string): boolean {
  return key === target || key.endsWith(`.${target}`);
}

/**
 * The decoder-layer index PEFT reads for `layers_to_transform`: `re.match(r".*?\.[^.]*\.(\d+)\.", key)`,
 * or `rf".*?\.{pattern}\.(\d+)\."` per `layers_pattern` (check_target_module_exists).
 */
function layerIndexOf(key: string, patterns: string[] | null): number | null {
  const res = patterns === null ? [/^.*?\.[^.]*\.(\d+)\./] : patterns.map((p) => compile(`^.*?\\.${p}\\.(\\d+)\\.`, p, 'layers_pattern'));
  for (const re of res) {
    const m = re.exec(key);
    if (m) return Number(m[1]);
  }
  return null;
}

/** `get_pattern_key`: the first rank_pattern key with `re.match(rf"(.*\.)?({key})$", module_key)`. */
function rankPatternFor(spec: LoraSpec, key: string): number {
  for (const [pattern, r] of Object.entries(spec.rankPattern)) {
    if (compile(`^(.*\\.)?(${pattern})$`, pattern, 'rank_pattern').test(key)) return r;
  }
  return spec.r;
}

export function targetableNames(all: ModuleInstance[]): string {
  return [...new Set(all.filter((m) => m.kind !== 'norm').map((m) => m.name))].join(', ');
}

/** The instances of `all` a LoRA spec wraps (PEFT's target matching). */
export function matchLoraTargets(spec: LoraSpec, all: ModuleInstance[]): ModuleInstance[] {
  const t = spec.targets;
  if ((t === 'all-linear' || !Array.isArray(t)) && (spec.layersToTransform !== null || spec.layersPattern !== null)) {
    // LoraConfig.__post_init__: "`layers_to_transform` cannot be used when `target_modules` is a str."
    throw new InputError('LoRA layers_to_transform/layers_pattern cannot be combined with targets=all-linear or a regex (PEFT LoraConfig rejects it)');
  }
  if (spec.layersPattern !== null && spec.layersToTransform === null) {
    throw new InputError('LoRA layers_pattern needs layers_to_transform (PEFT LoraConfig rejects it)');
  }
  let targeted: ModuleInstance[];
  if (t === 'all-linear') {
    // INCLUDE_LINEAR_LAYERS_SHORTHAND: every nn.Linear (isinstance, so Llama4Router, an nn.Linear
    // subclass, is in) minus the output embedding `get_output_embeddings()` = lm_head
    // (_maybe_include_all_linear_layers, after artidoro/qlora's find_all_linear_names). The embedding
    // is not Linear and stays out. Llama 4's routed experts are fused nn.Parameters, not Linear
    // modules: all-linear never reaches them; PEFT adapts them only through
    // `target_parameters=['feed_forward.experts.gate_up_proj', 'feed_forward.experts.down_proj']`.
    targeted = all.filter((m) => m.kind === 'linear' && m.group !== 'lm_head');
  } else if (Array.isArray(t)) {
    const missing: string[] = [];
    const hit = new Set<ModuleInstance>();
    for (const target of t) {
      const matches = all.filter((m) => nameMatches(m.key, target));
      const norm = matches.find((m) => m.kind === 'norm');
      if (norm) {
        throw new InputError(`LoRA target "${target}" is an RMSNorm (${norm.key}); LoRA wraps Linear and Embedding modules only (targetable: ${targetableNames(all)})`);
      }
      if (matches.length === 0) missing.push(target);
      for (const m of matches) hit.add(m);
    }
    if (missing.length > 0) {
      // PEFT raises only when no target matches at all ("Target modules {...} not found in the base
      // model"); a name that matches nothing is almost always a typo, so each one is reported here.
      throw new InputError(`LoRA target modules ${missing.join(', ')} not found in the model (targetable: ${targetableNames(all)})`);
    }
    targeted = [...hit];
    if (spec.layersToTransform !== null) {
      const layers = new Set(spec.layersToTransform);
      targeted = targeted.filter((m) => {
        const i = layerIndexOf(m.key, spec.layersPattern);
        return i !== null && layers.has(i);
      });
    }
  } else {
    targeted = all.filter((m) => fullMatch(t.regex, m.key, 'target_modules'));
    const norm = targeted.find((m) => m.kind === 'norm');
    if (norm) throw new InputError(`LoRA target regex "${t.regex}" matches RMSNorm ${norm.key}; LoRA wraps Linear and Embedding modules only`);
    if (targeted.length === 0) throw new InputError(`LoRA target modules regex "${t.regex}" not found in the model (module keys look like model.layers.0.self_attn.q_proj)`);
  }
  const ex = spec.excludeModules;
  if (ex !== null) {
    targeted = targeted.filter((m) => !(Array.isArray(ex) ? ex.some((x) => nameMatches(m.key, x)) : fullMatch(ex.regex, m.key, 'exclude_modules')));
  }
  // check_target_module_exists: a module matched by modules_to_save is never also LoRA-wrapped.
  if (spec.modulesToSave.length > 0) {
    const saved = spec.modulesToSave.map((s) => compile(`^(|.*\\.)${s}($|\\..*)`, s, 'modules_to_save'));
    targeted = targeted.filter((m) => !saved.some((re) => re.test(m.key)));
  }
  if (targeted.length === 0 && spec.targetParameters.length === 0) {
    throw new InputError('LoRA targets no module after layers_to_transform / exclude_modules / modules_to_save (PEFT: "No modules were targeted for adaptation")');
  }
  return targeted;
}

/** The module instances a LoRA spec wraps on `arch` (PEFT's target matching), for runners/peft. */
export function resolveLoraTargets(spec: LoraSpec, arch: TextArch): ModuleInstance[] {
  return matchLoraTargets(spec, moduleInstances(arch));
}

/** The rank of module `key` under the spec's `rank_pattern` (PEFT get_pattern_key), else `r`. */
export function loraRankFor(spec: LoraSpec, key: string): number {
  return rankPatternFor(spec, key);
}
