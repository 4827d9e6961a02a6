// PEFT methods as the runners apply them: spec parsing (CLI string, HF adapter directory, official
// .pth release), the model's module instances and PEFT's target matching. harness/peft adds the
// exact trainable-parameter counts.
export {
  PEFT_METHODS,
  LORA_DEFAULTS,
  LORA_DEFAULT_TARGETS,
  QLORA_DEFAULTS,
  ADAPTER_V1_DEFAULTS,
  ADAPTER_V2_DEFAULTS,
  EXCITOR_DEFAULTS,
  parsePeftSpec,
  peftLabel,
  peftSpecSchema,
  type PeftMethod,
  type PeftSpec,
  type LoraSpec,
  type LoraTargets,
  type AdapterV1Spec,
  type AdapterV2Spec,
  type ExcitorSpec,
} from './spec.ts';
export { SUPPORTED_PEFT_TYPES, adapterConfigToSpec, readAdapterConfig, parsePeft } from './adapter-config.ts';
export { loraRankFor, matchLoraTargets, resolveLoraTargets } from './targets.ts';
export { moduleInstances, expertParameters, type ModuleInstance, type ParameterInstance } from './modules.ts';
export { officialReleaseArg, officialReleaseSpec, readOfficialRelease, checkOfficialRelease, isOfficialAdapterV2, VISUAL_RELEASE_LAYERS, type OfficialRelease } from './official.ts';
export { VISUAL_DEFAULTS, countVisual, visualParameterShapes, visualPathFromTensors, type VisualDims } from './visual.ts';
