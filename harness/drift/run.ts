// `llama-eval drift` end to end: checkpoint + text -> the pair of models -> DriftStats -> a `drift`
// record, appended to <out>/records.jsonl. An --out that already holds a run (records.jsonl with a
// manifest, as `llama-eval run` writes it) gets the drift record under that run's id, so reports
// and the history store show drift beside the run's accuracy; otherwise a manifest opens the file.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { DriftStats } from '../../reports/drift.ts';
import { readRecords, RecordWriter } from '../../results/store.ts';
import type { DriftRecord, ManifestRecord } from '../../results/schema.ts';
import { openCheckpoint } from '../../runners/hf/checkpoint.ts';
import { loadReferenceFromCheckpoint } from '../../runners/reference-weights.ts';
import { LlamaTokenizer } from '../../runners/tokenizer.ts';
import type { AdapterInit } from '../../runners/peft/index.ts';
import { parsePeft, peftLabel } from '../peft/index.ts';
import { buildManifest, sha256File, type ManifestFile } from '../run/manifest.ts';
import { loadDriftText } from './data.ts';
import { driftWindows, measureDrift } from './measure.ts';
import { AGAINST_KEYWORDS, resolvePair, type DriftBackend } from './pair.ts';
import { driftRecord } from './record.ts';

export interface DriftOptions {
  model: string;
  peft?: string;
  against: string;
  backend: DriftBackend;
  data: string;
  maxTokens: number;
  ctx?: number;
  seed: number;
  init: AdapterInit;
  offline: boolean;
  out?: string;
  env?: NodeJS.ProcessEnv;
}

export interface DriftResult {
  record: DriftRecord;
  stats: DriftStats;
  /** records.jsonl written, when --out was given. */
  recordsPath: string | null;
}

const MODEL_FILE = /^(config\.json|tokenizer(_config)?\.json|.*\.safetensors(\.index\.json)?)$/;
const ADAPTER_FILE = /^adapter_(config\.json|model\.safetensors)$/;

async function filesIn(dir: string, pattern: RegExp, role: ManifestFile['role']): Promise<ManifestFile[]> {
  const out: ManifestFile[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (pattern.test(name) && statSync(path).isFile()) out.push({ role, path, sha256: await sha256File(path) });
  }
  return out;
}

async function adapterFiles(arg: string | undefined): Promise<ManifestFile[]> {
  if (arg === undefined || !existsSync(arg)) return [];
  return filesIn(statSync(arg).isDirectory() ? arg : dirname(arg), ADAPTER_FILE, 'adapter');
}

/** The run already in `dir`, if any: its manifest decides the run id the drift record joins. */
function existingManifest(recordsPath: string): ManifestRecord | null {
  if (!existsSync(recordsPath)) return null;
  return readRecords(recordsPath).records.find((r): r is ManifestRecord => r.kind === 'manifest') ?? null;
}

const label = (arg: string | undefined): string | null => (arg === undefined || arg.trim() === '' ? null : peftLabel(parsePeft(arg)));

export async function runDrift(o: DriftOptions): Promise<DriftResult> {
  const checkpoint = await openCheckpoint(o.model, { offline: o.offline, env: o.env });
  // Parse both PEFT arguments before any forward, so a bad spec fails in milliseconds.
  const peft = label(o.peft);
  const against = (AGAINST_KEYWORDS as readonly string[]).includes(o.against) ? o.against : (label(o.against) ?? 'base');
  const tokenizer = LlamaTokenizer.fromDir(checkpoint.dir);
  const source = await loadDriftText(o.data, { offline: o.offline, env: o.env });
  const prefix = tokenizer.encode('', { addSpecialTokens: true });
  const ctx = o.ctx ?? Math.min(checkpoint.arch.text.maxPositionEmbeddings, 256);
  const windows = driftWindows(tokenizer.encode(source.text, { addSpecialTokens: false }), prefix, { ctx, maxTokens: o.maxTokens });
  const pair = resolvePair(loadReferenceFromCheckpoint(checkpoint), { peft: o.peft, against: o.against, backend: o.backend, seed: o.seed, init: o.init });
  const stats = await measureDrift(pair, windows, checkpoint.config);

  const recordsPath = o.out === undefined ? null : join(o.out, 'records.jsonl');
  const manifest = recordsPath === null ? null : existingManifest(recordsPath);
  const runId = manifest?.run_id ?? `drift-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  const record = driftRecord({ runId, model: o.model, peft, against, backend: o.backend, data: source.label }, stats);
  if (recordsPath !== null) {
    const writer = new RecordWriter(recordsPath);
    try {
      if (manifest === null) {
        const files = [
          ...(await filesIn(checkpoint.dir, MODEL_FILE, 'model')),
          ...(await adapterFiles(o.peft)),
          ...(AGAINST_KEYWORDS as readonly string[]).includes(o.against) ? [] : await adapterFiles(o.against),
          ...source.files.map((f) => ({ role: 'data' as const, ...f })),
        ];
        writer.write(buildManifest({
          runId, seed: o.seed, files,
          config: { command: 'drift', model: o.model, peft: o.peft ?? null, against: o.against, backend: o.backend, data: o.data, max_tokens: o.maxTokens, ctx, init: o.init },
        }));
      }
      writer.write(record);
    } finally {
      writer.close();
    }
  }
  return { record, stats, recordsPath };
}
