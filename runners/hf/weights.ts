// The weights of an HF checkpoint directory: one `model.safetensors`, or shards named by
// `model.safetensors.index.json` (`{"metadata": {"total_size"}, "weight_map": {tensor: shard}}`),
// as `transformers`' `save_pretrained` writes them. Shards are opened lazily, on first read.
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { z } from 'zod';
import { InputError } from '../../results/errors.ts';
import type { FloatDtype } from './dtype.ts';
import { DTYPE_BYTES } from './dtype.ts';
import { SafetensorsFile, writeSafetensors, type ReadOptions, type TensorInfo, type TensorToWrite } from './safetensors.ts';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

const indexSchema = z.object({
  metadata: z.record(z.string(), z.unknown()).optional(),
  weight_map: z.record(z.string(), z.string()),
});

/** All tensors of a checkpoint, whichever file holds them. */
export class CheckpointWeights {
  private readonly open = new Map<string, SafetensorsFile>();
  /** tensor name -> shard file name (relative to dir). */
  private readonly shardOf: Map<string, string>;

  private constructor(readonly dir: string, shardOf: Map<string, string>) {
    this.shardOf = shardOf;
  }

  /** Opens the weights of checkpoint `dir`; every shard the index names must exist. */
  static open(dir: string): CheckpointWeights {
    const indexPath = join(dir, INDEX_FILE);
    if (existsSync(indexPath)) {
      let raw: unknown;
      try {
        raw = JSON.parse(readFileSync(indexPath, 'utf8'));
      } catch (error) {
        throw new InputError(`${indexPath}: not valid JSON (${(error as Error).message})`);
      }
      const parsed = indexSchema.safeParse(raw);
      if (!parsed.success) throw new InputError(`${indexPath}: expected {"weight_map": {tensor: shard file}} (${parsed.error.issues[0]?.message})`);
      const shardOf = new Map(Object.entries(parsed.data.weight_map));
      for (const shard of new Set(shardOf.values())) {
        if (shard !== basename(shard)) throw new InputError(`${indexPath}: shard "${shard}" must be a file name in the checkpoint directory`);
        if (!existsSync(join(dir, shard))) {
          throw new InputError(`${join(dir, shard)}: missing shard named by ${INDEX_FILE} (incomplete download? fetch every model-*.safetensors file)`);
        }
      }
      return new CheckpointWeights(dir, shardOf);
    }
    const single = join(dir, SINGLE_FILE);
    if (!existsSync(single)) {
      const others = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.safetensors')) : [];
      const hint = others.length > 0 ? `found ${others.join(', ')} but no ${INDEX_FILE}` : 'only safetensors weights are read (convert .bin/.pth with transformers save_pretrained)';
      throw new InputError(`${dir}: no weights: looked for ${SINGLE_FILE} and ${INDEX_FILE} (${hint})`);
    }
    const file = SafetensorsFile.open(single);
    const weights = new CheckpointWeights(dir, new Map([...file.tensors.keys()].map((name) => [name, SINGLE_FILE])));
    weights.open.set(SINGLE_FILE, file);
    return weights;
  }

  names(): string[] {
    return [...this.shardOf.keys()];
  }

  has(name: string): boolean {
    return this.shardOf.has(name);
  }

  private fileFor(name: string): SafetensorsFile {
    const shard = this.shardOf.get(name);
    if (shard === undefined) throw new InputError(`${this.dir}: checkpoint has no tensor "${name}" (is config.json from the same model?)`);
    let file = this.open.get(shard);
    if (!file) {
      file = SafetensorsFile.open(join(this.dir, shard));
      this.open.set(shard, file);
    }
    if (!file.tensors.has(name)) throw new InputError(`${file.path}: tensor "${name}" is named in ${INDEX_FILE} but absent from this shard`);
    return file;
  }

  info(name: string): TensorInfo {
    return this.fileFor(name).info(name);
  }

  readFloat32(name: string, options: ReadOptions = {}): Float32Array {
    return this.fileFor(name).readFloat32(name, options);
  }

  readBytes(name: string, options: ReadOptions = {}): Uint8Array {
    return this.fileFor(name).readBytes(name, options);
  }

  close(): void {
    for (const file of this.open.values()) file.close();
    this.open.clear();
  }
}

/**
 * Writes `tensors` into `dir` as `numShards` files `model-0000i-of-0000n.safetensors` plus the index
 * (or as `model.safetensors` when numShards is 1), splitting by bytes in the given order.
 */
export function writeCheckpointWeights(dir: string, tensors: readonly TensorToWrite[], dtype: FloatDtype = 'F32', numShards = 1): void {
  const metadata = { format: 'pt' };
  if (numShards <= 1) {
    writeSafetensors(join(dir, SINGLE_FILE), tensors, dtype, metadata);
    return;
  }
  const totalSize = tensors.reduce((s, t) => s + t.data.length * DTYPE_BYTES[dtype], 0);
  const target = totalSize / numShards;
  const groups: TensorToWrite[][] = [[]];
  let filled = 0;
  for (const t of tensors) {
    const size = t.data.length * DTYPE_BYTES[dtype];
    const current = groups[groups.length - 1]!;
    if (current.length > 0 && filled + size / 2 > target * groups.length && groups.length < numShards) {
      groups.push([t]);
    } else {
      current.push(t);
    }
    filled += size;
  }
  while (groups.length < numShards) groups.push([]);
  const pad = (n: number) => String(n).padStart(5, '0');
  const weightMap: Record<string, string> = {};
  groups.forEach((group, i) => {
    const file = `model-${pad(i + 1)}-of-${pad(numShards)}.safetensors`;
    writeSafetensors(join(dir, file), group, dtype, metadata);
    for (const t of group) weightMap[t.name] = file;
  });
  writeFileSync(join(dir, INDEX_FILE), `${JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2)}\n`);
}
