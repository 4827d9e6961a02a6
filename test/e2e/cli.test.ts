// The CLI as a user runs it: the real bin, real exit codes, stdout/stderr.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { main } from '../../harness/cli/main.ts';

const BIN = new URL('../../bin/llama-eval.js', import.meta.url).pathname;

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** In-process run of the same entry point, for the many cases that need no fresh process. */
async function run(...args: string[]) {
  let out = '';
  let err = '';
  const code = await main(args, { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

describe('llama-eval (bin)', () => {
  it('prints help listing the commands, exit 0', () => {
    const r = cli('--help');
    expect(r.code).toBe(0);
    for (const c of ['models', 'params', 'memory']) expect(r.out).toContain(c);
    expect(r.out).toMatch(/Exit codes: 0 ok, 1 .*2 usage or input error/);
  });

  it('exits 2 with a did-you-mean on an unknown model', () => {
    const r = cli('params', '--model', 'llama-3.1-8', '--json');
    expect(r.code).toBe(2);
    expect(r.err.trim()).toBe('llama-eval: unknown model "llama-3.1-8"; did you mean "llama-3.1-8b"? (run `llama-eval models` for the zoo, or pass a checkpoint directory)');
    expect(r.out).toBe('');
  });

  it('prints params JSON with the contract fields', () => {
    const r = cli('params', '--model', 'llama-3-8b', '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(Object.keys(j)).toEqual(expect.arrayContaining(['model', 'total_params', 'active_params', 'embedding_params', 'trainable_params', 'peft', 'components']));
    // Meta-Llama-3-8B: model.safetensors.index.json total_size 16,060,522,496 bytes of bf16.
    expect(j.total_params).toBe(16_060_522_496 / 2);
    expect(j.peft).toBeNull();
  });
});

describe('llama-eval (in process)', () => {
  it('exits 2 on an unknown command, naming it', async () => {
    const r = await run('frobnicate');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/Unknown argument: frobnicate/);
  });

  it('exits 2 when a required option is missing', async () => {
    const r = await run('params');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/Missing required argument: model/);
  });

  it('exits 2 on a bad choice', async () => {
    const r = await run('memory', '--model', 'llama-3-8b', '--dtype', 'fp8');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/Invalid values:[\s\S]*dtype/);
  });

  it('lists the zoo as JSON with the contract fields', async () => {
    const r = await run('models', '--json');
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.out) as Record<string, unknown>[];
    expect(rows.length).toBeGreaterThanOrEqual(20);
    for (const row of rows) {
      for (const k of ['id', 'family', 'version', 'total_params', 'active_params', 'context_length', 'modality']) expect(row).toHaveProperty(k);
    }
    // meta-llama/Llama-3.1-8B config.json max_position_embeddings.
    expect(rows.find((x) => x.id === 'llama-3.1-8b')?.context_length).toBe(131072);
    // Behemoth was announced without a config: no context length is published, so none is invented.
    const behemoth = rows.find((x) => x.id === 'llama-4-behemoth');
    expect(behemoth?.context_length).toBeNull();
    expect(behemoth?.exact).toBe(false);
  });

  it('prints a human table by default', async () => {
    const r = await run('models');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/llama-3\.1-405b\s.*405\.85B/);
  });

  it('refuses exact params for a published-figures-only model, exit 2', async () => {
    const r = await run('params', '--model', 'llama-4-behemoth');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/published figures only/);
  });

  it('names the bad key of a malformed PEFT spec, exit 2', async () => {
    const r = await run('params', '--model', 'llama-1-7b', '--peft', 'lora:rr=8');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/"rr"/);
  });

  it('names the missing field of a config.json, exit 2', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'ckpt-'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'llama', vocab_size: 32000, hidden_size: 64, intermediate_size: 128, num_attention_heads: 4 }));
    const r = await run('params', '--model', dir, '--json');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/config.json: missing field num_hidden_layers/);
  });
});
