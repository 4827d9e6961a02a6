#!/usr/bin/env node
// Entry point: registers tsx so the TypeScript sources run without a build step, then hands
// over to the CLI. Exit codes: 0 ok, 1 threshold/regression failed, 2 usage/input error, 3 internal.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../harness/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
