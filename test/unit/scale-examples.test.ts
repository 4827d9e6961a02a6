// docs/scale/*: the cluster examples docs/scale.md shows parse (YAML with js-yaml, shell by its
// `llama-eval ...` lines) and call only real commands with flags they accept — checked against the
// commands' real yargs definitions in dry-run mode, as test/unit/reports-nightly-workflow.test.ts does.
import { existsSync, readFileSync } from 'node:fs';
import { loadAll } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import type { CommandSpec } from '../../harness/cli/command.ts';
import { runCli } from '../e2e/reports-cli-harness.ts';

const SCALE = new URL('../../docs/scale/', import.meta.url);
const CLI_DIR = new URL('../../harness/cli/', import.meta.url);
const text = (name: string): string => readFileSync(new URL(name, SCALE), 'utf8');

/**
 * `llama-eval ...` command lines of a shell script (the nightly workflow test's reader): continuations
 * joined, cut at the first shell operator; ${{ expressions }} become "X" and $VARS / $(VARS) "0" —
 * their values exist only on the cluster.
 */
function shellInvocations(script: string): string[][] {
  const joined = script.replace(/\\\n\s*/g, ' ');
  const out: string[][] = [];
  for (const line of joined.split('\n')) {
    const at = line.indexOf('llama-eval ');
    if (at < 0 || !/^\s*(npx\s+)?llama-eval /.test(line)) continue;
    const rest = line.slice(at + 'llama-eval '.length).replace(/\$\{\{[^}]*\}\}/g, 'X').replace(/\$\(\w+\)|\$\{?\w+\}?/g, '0');
    const words: string[] = [];
    for (const m of rest.matchAll(/"([^"]*)"|'([^']*)'|([^\s;&|>]+)|([;&|>])/g)) {
      if (m[4] !== undefined) break;
      words.push(m[1] ?? m[2] ?? m[3] ?? '');
    }
    out.push(words);
  }
  return out;
}

interface Container { command?: string[]; args?: string[] }
interface K8sJob { kind: string; spec: { completionMode?: string; completions?: number; parallelism?: number; template: { spec: { containers: Container[] } } } }
interface Step { run?: string; uses?: string; with?: Record<string, unknown> }
interface Workflow { jobs: Record<string, { needs?: string; strategy?: { matrix: Record<string, unknown[]> }; steps: Step[] }> }

async function specFor(command: string): Promise<CommandSpec | null> {
  const file = new URL(`${command}-args.ts`, CLI_DIR);
  if (!existsSync(file)) return null;
  const mod = (await import(file.href)) as Record<string, unknown>;
  return Object.values(mod).find((v): v is CommandSpec =>
    typeof v === 'object' && v !== null && 'name' in v && 'builder' in v && String((v as CommandSpec).name).split(' ')[0] === command) ?? null;
}

/** Every invocation parses with its command's real definition (yargs strict: unknown flags fail). */
async function expectRealCommands(invocations: string[][]): Promise<void> {
  for (const words of invocations) {
    const spec = await specFor(words[0] ?? '');
    expect(spec, `llama-eval ${words[0]}: no harness/cli/${words[0]}-args.ts`).not.toBeNull();
    const r = await runCli(words, [spec!], true);
    expect(r.err, `llama-eval ${words.join(' ')}`).toBe('');
    expect(r.code).toBe(0);
  }
}

const shardOf = (words: string[]): string | undefined => words[words.indexOf('--shard') + 1];

describe('docs/scale examples', () => {
  it('Slurm: an array job whose task i runs --shard i/N, and a merge queued after it', async () => {
    const array = text('slurm-array.sbatch');
    const range = /#SBATCH --array=0-(\d+)/.exec(array);
    expect(range).not.toBeNull();
    const runs = shellInvocations(array);
    expect(runs.map((w) => w[0])).toEqual(['run']);
    expect(array).toContain(`--shard "\${SLURM_ARRAY_TASK_ID}/\${SHARDS}"`);
    expect(array).toContain(`SHARDS=${Number(range![1]) + 1}`);
    const merge = shellInvocations(text('slurm-merge.sbatch'));
    expect(merge.map((w) => w[0])).toEqual(['merge', 'history', 'report']);
    expect(text('slurm-submit.sh')).toMatch(/sbatch --dependency="afterok:\$\{array\}" docs\/scale\/slurm-merge\.sbatch/);
    await expectRealCommands([...runs, ...merge]);
  });

  it('Kubernetes: an Indexed Job, one pod per shard from JOB_COMPLETION_INDEX, then a merge Job', async () => {
    const [shards, merge] = loadAll(text('k8s-indexed-job.yaml')) as K8sJob[];
    expect(shards?.spec).toMatchObject({ completionMode: 'Indexed', completions: 4, parallelism: 4 });
    const invocation = (job: K8sJob | undefined): string[] => {
      const c = job!.spec.template.spec.containers[0]!;
      expect(c.command?.at(-1)).toBe('llama-eval');
      return (c.args ?? []).map((a) => a.replace(/\$\((\w+)\)/g, '0'));
    };
    const run = invocation(shards);
    expect(shards!.spec.template.spec.containers[0]!.args).toContain('$(JOB_COMPLETION_INDEX)/4');
    expect(shardOf(run)).toBe('0/4');
    const merged = invocation(merge);
    expect(merged.filter((a) => a.includes('/shard-'))).toHaveLength(4);
    await expectRealCommands([run, merged]);
  });

  it('GitHub Actions: a matrix job per shard and a merge job that needs them', async () => {
    const [workflow] = loadAll(text('github-matrix.yml')) as Workflow[];
    const shards = workflow!.jobs.shard!;
    const count = shards.strategy!.matrix.shard!.length;
    const runs = shards.steps.flatMap((s) => (s.run ? shellInvocations(s.run) : []));
    expect(runs).toHaveLength(1);
    expect(shards.steps.find((s) => s.run?.includes('llama-eval'))!.run).toContain(`--shard \${{ matrix.shard }}/${count}`);
    expect(workflow!.jobs.merge!.needs).toBe('shard');
    const merges = workflow!.jobs.merge!.steps.flatMap((s) => (s.run ? shellInvocations(s.run) : []));
    expect(merges.map((w) => w[0])).toEqual(['merge']);
    expect(merges[0]!.filter((w) => w.startsWith('runs/shard-'))).toHaveLength(count);
    for (const s of Object.values(workflow!.jobs).flatMap((j) => j.steps)) if (s.uses) expect(s.uses).toMatch(/^[\w.-]+\/[\w.-]+@v\d+$/);
    await expectRealCommands([...runs, ...merges]);
  });

  it('vLLM: 405B with tensor parallelism 8, evaluated through --backend openai at the port it serves', async () => {
    const script = text('vllm-405b.sh');
    const serve = /^vllm serve (\S+) .*--tensor-parallel-size 8 .*--port (\d+)/m.exec(script);
    expect(serve?.[1]).toBe('meta-llama/Llama-3.1-405B');
    const runs = shellInvocations(script);
    expect(runs.length).toBeGreaterThanOrEqual(1);
    for (const words of runs) {
      expect(words[words.indexOf('--backend') + 1]).toBe('openai');
      expect(words[words.indexOf('--base-url') + 1]).toBe(`http://localhost:${serve![2]}`);
      expect(words[words.indexOf('--model') + 1]).toBe(serve![1]);
    }
    await expectRealCommands(runs);
  });

  it('the flag check is not vacuous: a misspelt flag or an unknown command fails it', async () => {
    const spec = await specFor('merge');
    const r = await runCli(['merge', 'a', 'b', '--out', 'm', '--shrads', '2'], [spec!], true);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/Unknown arguments?: shrads/);
    expect(await specFor('mergee')).toBeNull();
  });
});
