import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { DatabaseSchema } from '../storage/schema.ts';
import type { ColumnLocation } from './encrypted-columns.ts';
import { FIELD_VERSION } from './field-cipher.ts';

// Key ids are generated as `dk` + hex; anything else could carry LIKE wildcards into a pattern.
const KEY_ID = /^[A-Za-z0-9]+$/;

function prefixOf(keyId: string): string {
  if (!KEY_ID.test(keyId)) throw new TypeError(`Unexpected data key id ${JSON.stringify(keyId)}`);
  return `${FIELD_VERSION}.${keyId}.%`;
}

/** `column LIKE 'v1.<id>.%' OR …`: the value was sealed under one of `keyIds`. */
function underKeys(location: ColumnLocation, keyIds: readonly string[]): RawBuilder<unknown> {
  const column = sql.ref(location.column);
  return sql.join(
    keyIds.map((id) => sql`${column} like ${prefixOf(id)}`),
    sql` or `,
  );
}

/** Rows strictly after `cursor` in key-column order, written out so both engines bind it alike. */
function after(keyColumns: readonly string[], cursor: readonly unknown[]): RawBuilder<unknown> {
  return sql.join(
    keyColumns.map((column, index) => {
      const equal = keyColumns
        .slice(0, index)
        .map((previous, at) => sql`${sql.ref(previous)} = ${cursor[at]}`);
      return sql`(${sql.join([...equal, sql`${sql.ref(column)} > ${cursor[index]}`], sql` and `)})`;
    }),
    sql` or `,
  );
}

function sameRow(location: ColumnLocation, row: Record<string, unknown>): RawBuilder<unknown> {
  return sql.join(
    location.keyColumns.map((column) => sql`${sql.ref(column)} = ${row[column]}`),
    sql` and `,
  );
}

/**
 * The queries of the re-encryption job over any encrypted column, in SQL both SQLite and
 * PostgreSQL run. Columns are named by `ColumnLocation`, so the statements are built untyped.
 */
export class StaleRows {
  readonly #db: Kysely<DatabaseSchema>;

  constructor(db: Kysely<DatabaseSchema>) {
    this.#db = db;
  }

  /** How many values of the column are under one of `keyIds`. */
  async count(location: ColumnLocation, keyIds: readonly string[]): Promise<number> {
    const result = await sql<{ stale: number | string | bigint }>`
      select count(*) as stale from ${sql.table(location.table)} where ${underKeys(location, keyIds)}
    `.execute(this.#db);
    return Number(result.rows[0]?.stale ?? 0);
  }

  /** True when at least one value of the column is under `keyId`. */
  async any(location: ColumnLocation, keyId: string): Promise<boolean> {
    const result = await sql`
      select 1 as found from ${sql.table(location.table)} where ${underKeys(location, [keyId])} limit 1
    `.execute(this.#db);
    return result.rows.length > 0;
  }

  /** Up to `limit` rows under one of `keyIds` after `cursor` (null: from the start), in key order. */
  async batch(
    location: ColumnLocation,
    keyIds: readonly string[],
    cursor: readonly unknown[] | null,
    limit: number,
  ): Promise<Array<Record<string, unknown>>> {
    const keys = location.keyColumns.map((column) => sql.ref(column));
    const from = cursor ? sql` and (${after(location.keyColumns, cursor)})` : sql``;
    const result = await sql<Record<string, unknown>>`
      select ${sql.join([...keys, sql.ref(location.column)])}
      from ${sql.table(location.table)}
      where (${underKeys(location, keyIds)})${from}
      order by ${sql.join(keys)}
      limit ${limit}
    `.execute(this.#db);
    return result.rows;
  }

  /** Writes `next` only if the row still holds `previous`; false when someone changed it first. */
  async replace(
    location: ColumnLocation,
    row: Record<string, unknown>,
    previous: string,
    next: string,
  ): Promise<boolean> {
    const column = sql.ref(location.column);
    const result = await sql`
      update ${sql.table(location.table)} set ${column} = ${next}
      where ${sameRow(location, row)} and ${column} = ${previous}
    `.execute(this.#db);
    return (result.numAffectedRows ?? 0n) > 0n;
  }
}
