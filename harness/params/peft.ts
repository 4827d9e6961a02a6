// Glue between the PEFT methods (harness/peft) and the `params` report: resolves a `--peft`
// argument (spec string, HF adapter directory or official LLaMA-Adapter .pth) on one model and returns its exact counts.
import type { ModelArch } from '../../runners/arch.ts';
import { checkOfficialRelease, countTrainable, officialReleaseArg, parsePeft, peftLabel, readOfficialRelease, type PeftSpec } from '../peft/index.ts';

export interface PeftCount {
  /** Human label, e.g. `lora r=8 alpha=16 targets=q_proj+v_proj`. */
  label: string;
  /** What HF PEFT / the method's official code reports as trainable. */
  trainableParams: number;
  /** Parameters the adapter adds to the model (the rest of `trainableParams` are unfrozen base weights). */
  addedParams: number;
  /** Named parts of `trainableParams`. */
  components: Record<string, number>;
  /** The `peft` object of `params --json`: the resolved spec plus what it matched on this model. */
  peft: Record<string, unknown>;
}

export function applyPeftToCount(arg: string, arch: ModelArch): PeftCount {
  let spec: PeftSpec;
  if (officialReleaseArg(arg)) {
    // An official .pth: its tensors must fit this model before its spec is counted.
    const release = readOfficialRelease(arg);
    checkOfficialRelease(release, arch.text);
    spec = release.spec;
  } else {
    spec = parsePeft(arg);
  }
  const count = countTrainable(spec, arch.text);
  return {
    label: peftLabel(spec),
    trainableParams: count.trainable,
    addedParams: count.added,
    components: count.components,
    peft: {
      ...spec,
      label: peftLabel(spec),
      trainable_params: count.trainable,
      added_params: count.added,
      resolved: count.resolved,
    },
  };
}
