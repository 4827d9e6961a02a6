// docs/ci/nightly.yml is valid YAML, is a GitHub Actions workflow with the pieces the nightly
// needs, and every `llama-eval` command in it parses with the CLI's real command definitions
// (yargs strict mode: an unknown command or flag fails).
import { existsSync, readFileSync } from 'node:fs';
import { load as loadYaml } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import type { CommandSpec } from '../../harness/cli/command.ts';
import { runCli } from '../e2e/reports-cli-harness.ts';

// js-yaml 4 parses YAML 1.2, where `on:` stays a string key (YAML 1.1 would read it as true).

const WORKFLOW = new URL('../../docs/ci/nightly.yml', import.meta.url);
const CLI_DIR = new URL('../../harness/cli/', import.meta.url);

/**
 * Commands the workflow calls that another issue is still building. Each is checked like the
 * others the moment its `harness/cli/<name>-args.ts` exists; until then it must be listed here.
 */
const PENDING: Record<string, string> = {};

interface Step { name?: string; run?: string; uses?: string; if?: string; with?: Record<string, unknown> }
interface Workflow { on: { schedule?: { cron: string }[] }; jobs: Record<string, { steps: Step[] }> }

/** `npx llama-eval ...` command lines in a shell script: continuations joined, cut at the first operator. */
function llamaEvalInvocations(script: string): string[][] {
  const joined = script.replace(/\\\n\s*/g, ' ');
  const out: string[][] = [];
  for (const line of joined.split('\n')) {
    const at = line.indexOf('llama-eval ');
    if (at < 0 || !/^\s*(npx\s+)?llama-eval /.test(line)) continue;
    // GitHub expressions become "X" and shell variables "0.01" (numeric, so number flags accept
    // them): their real values exist only in CI.
    const text = line.slice(at + 'llama-eval '.length).replace(/\$\{\{[^}]*\}\}/g, 'X').replace(/\$\{?\w+\}?/g, '0.01');
    const words: string[] = [];
    for (const m of text.matchAll(/"([^"]*)"|'([^']*)'|([^\s;&|>]+)|([;&|>])/g)) {
      if (m[4] !== undefined) break;
      words.push(m[1] ?? m[2] ?? m[3] ?? '');
    }
    out.push(words);
  }
  return out;
}

/** The command's spec from harness/cli/<name>-args.ts, or null when no such file exists yet. */
async function specFor(command: string): Promise<CommandSpec | null> {
  const file = new URL(`${command}-args.ts`, CLI_DIR);
  if (!existsSync(file)) return null;
  const mod = (await import(file.href)) as Record<string, unknown>;
  const spec = Object.values(mod).find((v): v is CommandSpec =>
    typeof v === 'object' && v !== null && 'name' in v && 'builder' in v && String((v as CommandSpec).name).split(' ')[0] === command);
  return spec ?? null;
}

const workflow = loadYaml(readFileSync(WORKFLOW, 'utf8')) as Workflow;
const steps = Object.values(workflow.jobs).flatMap((j) => j.steps);
const invocations = steps.flatMap((s) => (s.run ? llamaEvalInvocations(s.run) : []));

describe('docs/ci/nightly.yml', () => {
  it('is a scheduled GitHub Actions workflow whose steps each run or use something', () => {
    expect(workflow.on.schedule?.[0]?.cron).toMatch(/^(\S+\s+){4}\S+$/);
    expect(steps.length).toBeGreaterThan(5);
    for (const s of steps) expect(Boolean(s.run) !== Boolean(s.uses), JSON.stringify(s)).toBe(true);
    for (const s of steps) if (s.uses) expect(s.uses).toMatch(/^[\w.-]+\/[\w.-]+@v\d+$/); // pinned major versions
  });

  it('restores the baseline from a previous run and uploads this run and the report', () => {
    const download = steps.find((s) => s.uses?.startsWith('actions/download-artifact@'));
    const uploads = steps.filter((s) => s.uses?.startsWith('actions/upload-artifact@')).map((s) => s.with?.name);
    expect(download?.with).toMatchObject({ name: 'nightly-run', path: 'baseline' });
    expect(download?.with?.['run-id']).toBeDefined();
    expect(uploads).toEqual(['nightly-run', 'nightly-report']);
  });

  it('gates on regress with the baseline, the current run and both thresholds', () => {
    const regress = invocations.find((w) => w[0] === 'regress');
    expect(regress).toBeDefined();
    for (const flag of ['--baseline', '--current', '--max-drop', '--alpha', '--junit']) expect(regress).toContain(flag);
    expect(invocations.map((w) => w[0])).toEqual(expect.arrayContaining(['run', 'report', 'regress', 'leaderboard']));
  });

  it('calls only real commands with flags they accept', async () => {
    expect(invocations.length).toBeGreaterThanOrEqual(5);
    for (const words of invocations) {
      const command = words[0] ?? '';
      const spec = await specFor(command);
      if (!spec) {
        expect(PENDING[command], `llama-eval ${command}: no harness/cli/${command}-args.ts and not pending`).toBeDefined();
        continue;
      }
      const r = await runCli(words, [spec], true);
      expect(r.err, `llama-eval ${words.join(' ')}`).toBe('');
      expect(r.code).toBe(0);
    }
  });

  it('the flag check is not vacuous: a misspelt flag fails it', async () => {
    const spec = await specFor('regress');
    expect(spec).not.toBeNull();
    const r = await runCli(['regress', '--baseline', 'b', '--current', 'c', '--max-dorp', '0.1'], spec ? [spec] : [], true);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/Unknown arguments?: max-dorp/);
  });
});
