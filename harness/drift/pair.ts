// Which two models a drift measurement compares. Both sides are built from one checkpoint so that
// they score exactly the same tokens with one vocabulary; `--against` names the reference side
// ("base" of KL(base || adapted)), `--peft` and `--backend` the adapted side.
import type { ReferenceModel } from '../../runners/reference-weights.ts';
import { applyPeftToReference, type AdapterInit, type LoraMode } from '../../runners/peft/index.ts';
import { quantizeReferenceNf4 } from '../../runners/quant/nf4-model.ts';
import { InputError } from '../../results/errors.ts';
import { parsePeft } from '../peft/index.ts';
import type { DriftBackend } from './backends.ts';

export { DRIFT_BACKENDS, type DriftBackend } from './backends.ts';

/** `--against` values with a fixed meaning; anything else is read as a PEFT spec or adapter directory. */
export const AGAINST_KEYWORDS = ['base', 'nf4', 'unmerged', 'reference'] as const;

export interface DriftSide {
  model: ReferenceModel;
  backend: DriftBackend;
}

export interface DriftPair {
  base: DriftSide;
  adapted: DriftSide;
}

export interface PairOptions {
  /** `--peft`: applied to the adapted side (and, for nf4 / unmerged, to both). */
  peft?: string;
  /** `--against`: base | nf4 | unmerged | reference | <peft spec or adapter dir>. */
  against: string;
  backend: DriftBackend;
  /** Spec strings only: seed and init of the drawn adapter weights (adapter dirs carry their own). */
  seed?: number;
  init?: AdapterInit;
}

const hasPeft = (peft: string | undefined): peft is string => peft !== undefined && peft.trim() !== '';

/**
 * The two sides of a drift measurement. ORT builds its graph from the weights, so adapters go to
 * it merged (LoRA/QLoRA); an adapter that only exists as side branches is refused there by
 * referenceTensorSource with a message naming the fix.
 */
export function resolvePair(model: ReferenceModel, options: PairOptions): DriftPair {
  const { peft, against, backend } = options;
  const mode: LoraMode = backend === 'ort' ? 'merged' : 'unmerged';
  const apply = (m: ReferenceModel, arg: string | undefined, applyMode: LoraMode = mode) =>
    applyPeftToReference(m, arg, { mode: applyMode, seed: options.seed ?? 0, init: options.init ?? 'random' });
  switch (against) {
    case 'base':
      return { base: { model, backend }, adapted: { model: apply(model, peft), backend } };
    case 'nf4': {
      // QLoRA's question: what does storing the base in NF4 cost? The same adapter sits on both sides.
      if (hasPeft(peft) && parsePeft(peft).method === 'qlora') {
        throw new InputError('--against nf4 with --peft qlora: qlora already quantizes the base, so both sides would be NF4; use --peft lora:... (same rank/targets) to measure the NF4 base');
      }
      return { base: { model: apply(model, peft), backend }, adapted: { model: apply(quantizeReferenceNf4(model), peft), backend } };
    }
    case 'unmerged': {
      if (!hasPeft(peft)) throw new InputError('--against unmerged compares an adapter merged into the weights with the same adapter as side branches; give --peft <adapter>');
      if (backend !== 'reference') {
        throw new InputError('--against unmerged needs --backend reference: the ORT graph is built from weights, so it only holds merged adapters');
      }
      return { base: { model: apply(model, peft, 'unmerged'), backend }, adapted: { model: apply(model, peft, 'merged'), backend } };
    }
    case 'reference': {
      if (backend === 'reference') {
        throw new InputError('--against reference compares a backend with the float64 reference forward; give --backend ort');
      }
      const adapted = apply(model, peft);
      return { base: { model: adapted, backend: 'reference' }, adapted: { model: adapted, backend } };
    }
    default:
      return { base: { model: apply(model, against), backend }, adapted: { model: apply(model, peft), backend } };
  }
}
