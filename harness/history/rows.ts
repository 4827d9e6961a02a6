// Bulk insert that is idempotent: rows go through DuckDB's appender into a temporary staging
// table (fast, no per-row statement), then one INSERT ... ON CONFLICT DO NOTHING moves the ones
// whose primary key is new. Staging columns are only VARCHAR or DOUBLE, so callers hand plain
// strings and numbers; `expr` converts text to the target type (JSON -> MAP, ISO time -> TIMESTAMP).
import type { DuckDBConnection } from '@duckdb/node-api';

export interface Column {
  name: string;
  kind: 'text' | 'num' | 'bool';
  /** SQL over the staging column `name`; default: the column as is (DuckDB casts on insert). */
  expr?: string;
}

export type Cell = string | number | boolean | null;

/** Inserts `rows` into `table`, skipping existing keys; returns how many rows were new. */
export async function insertNew(conn: DuckDBConnection, table: string, columns: readonly Column[], rows: readonly Cell[][]): Promise<number> {
  if (rows.length === 0) return 0;
  const staging = `staging_${table}`;
  const typeOf = (c: Column) => (c.kind === 'num' ? 'DOUBLE' : c.kind === 'bool' ? 'BOOLEAN' : 'VARCHAR');
  await conn.run(`CREATE OR REPLACE TEMP TABLE ${staging} (${columns.map((c) => `"${c.name}" ${typeOf(c)}`).join(', ')})`);
  const appender = await conn.createAppender(staging, 'main', 'temp');
  for (const row of rows) {
    columns.forEach((c, i) => {
      const v = row[i];
      if (v === null || v === undefined) appender.appendNull();
      else if (c.kind === 'num') appender.appendDouble(Number(v));
      else if (c.kind === 'bool') appender.appendBoolean(v === true);
      else appender.appendVarchar(String(v));
    });
    appender.endRow();
  }
  appender.closeSync();
  const result = await conn.run(
    `INSERT INTO ${table} (${columns.map((c) => `"${c.name}"`).join(', ')}) ` +
      `SELECT ${columns.map((c) => c.expr ?? `"${c.name}"`).join(', ')} FROM temp.main.${staging} ON CONFLICT DO NOTHING`,
  );
  await conn.run(`DROP TABLE temp.main.${staging}`);
  return result.rowsChanged;
}

/** An ISO-8601 time with any offset -> 'YYYY-MM-DD HH:MM:SS.sss' in UTC, for a TIMESTAMP column. */
export function utcTimestamp(iso: string): string {
  return new Date(iso).toISOString().replace('T', ' ').replace('Z', '');
}
