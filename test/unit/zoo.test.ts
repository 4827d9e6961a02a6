import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveModel, suggestModel, ZOO } from '../../harness/zoo.ts';
import { LLAMA_VERSIONS } from '../../harness/zoo/types.ts';

const REQUIRED_IDS = [
  'llama-1-7b', 'llama-1-13b', 'llama-1-33b', 'llama-1-65b',
  'llama-2-7b', 'llama-2-13b', 'llama-2-70b',
  'llama-3-8b', 'llama-3-70b',
  'llama-3.1-8b', 'llama-3.1-70b', 'llama-3.1-405b',
  'llama-3.2-1b', 'llama-3.2-3b', 'llama-3.2-11b-vision', 'llama-3.2-90b-vision',
  'llama-3.3-70b',
  'llama-4-scout', 'llama-4-maverick', 'llama-4-behemoth',
];

describe('zoo', () => {
  it('holds every LLaMA version the issue names, each with an HF repo id', () => {
    const ids = ZOO.map((e) => e.id);
    for (const id of REQUIRED_IDS) expect(ids).toContain(id);
    for (const e of ZOO) expect(e.hfRepo).toMatch(/^[\w.-]+\/[\w.-]+$/);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('has a tiny model for every version', () => {
    for (const v of LLAMA_VERSIONS) expect(ZOO.some((e) => e.id.startsWith('tiny-') && e.version === v)).toBe(true);
  });

  it('parses every config it holds', () => {
    for (const e of ZOO) {
      const m = resolveModel(e.id);
      expect(m.arch === null).toBe(e.config === null);
    }
  });

  it('suggests the closest id for a typo', () => {
    expect(suggestModel('llama-3.1-8')).toBe('llama-3.1-8b');
    expect(suggestModel('lama-2-7b')).toBe('llama-2-7b');
    expect(() => resolveModel('llama-3-8')).toThrow(/unknown model "llama-3-8"; did you mean "llama-3-8b"\?/);
  });

  it('offers no suggestion when nothing is close', () => {
    expect(() => resolveModel('mistral-large-instruct-2411')).toThrow(/^unknown model "mistral-large-instruct-2411" \(run/);
  });

  it('loads any local checkpoint directory with a config.json', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ckpt-'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify(ZOO.find((e) => e.id === 'llama-2-7b')!.config));
    const m = resolveModel(dir);
    expect(m.source).toBe('path');
    expect(m.arch?.text.hiddenSize).toBe(4096);
  });

  it('names config.json when a directory lacks it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ckpt-'));
    expect(() => resolveModel(dir)).toThrow(new RegExp(`${dir}/config.json: not found`));
  });

  it('names the file when config.json is not JSON', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ckpt-'));
    writeFileSync(join(dir, 'config.json'), '{"model_type": "llama",');
    expect(() => resolveModel(dir)).toThrow(/config.json: not valid JSON/);
  });

  it('finds an HF repo id in the huggingface_hub cache layout', () => {
    // huggingface_hub layout: models--org--name/refs/main holds the commit; snapshots/<commit>/.
    const cache = mkdtempSync(join(tmpdir(), 'hub-'));
    const repo = join(cache, 'models--meta-llama--Llama-3.2-1B');
    const commit = '4e20de362430cd3b72f300e6b0f18e50e7166e08';
    mkdirSync(join(repo, 'refs'), { recursive: true });
    mkdirSync(join(repo, 'snapshots', commit), { recursive: true });
    writeFileSync(join(repo, 'refs', 'main'), commit);
    writeFileSync(join(repo, 'snapshots', commit, 'config.json'), JSON.stringify(ZOO.find((e) => e.id === 'llama-3.2-1b')!.config));
    const m = resolveModel('meta-llama/Llama-3.2-1B', { HF_HUB_CACHE: cache });
    expect(m.source).toBe('hf-cache');
    expect(m.dir).toBe(join(repo, 'snapshots', commit));
    expect(m.arch?.text.tieWordEmbeddings).toBe(true);
  });

  it('says where it looked for an uncached HF repo id and mentions HF_TOKEN', () => {
    const cache = mkdtempSync(join(tmpdir(), 'hub-'));
    expect(() => resolveModel('meta-llama/Llama-3.1-8B', { HF_HUB_CACHE: cache })).toThrow(
      new RegExp(`searched ${cache}/models--meta-llama--Llama-3.1-8B.*HF_TOKEN`),
    );
  });
});
