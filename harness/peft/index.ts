// PEFT methods: spec parsing (runners/peft/spec, where the runners apply them) and exact
// trainable-parameter counts (trainable.ts).
export * from '../../runners/peft/spec/index.ts';
export { countTrainable, type TrainableCount } from './trainable.ts';
