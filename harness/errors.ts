// InputError lives in results/ so every layer (runners, suites, reports) may throw it without
// importing harness/ (DESIGN.md import rules); the CLI code keeps importing it from here.
export { InputError, isInputError } from '../results/errors.ts';
