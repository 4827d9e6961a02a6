// Hashes for the manifest: sha256 of each file read and of the documents actually used. The document
// hash goes over a canonical JSON (object keys sorted, no whitespace) so the same documents hash the same
// on every machine whatever order a parser happened to build their keys in.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';

export async function sha256File(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}

export function dataHash(docs: readonly unknown[]): string {
  return createHash('sha256').update(canonicalJson(docs)).digest('hex');
}
