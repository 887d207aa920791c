import type { Kysely, Selectable } from 'kysely';
import { BastionError, HttpErrors } from '../../core/errors.ts';
import type { DatabaseSchema } from '../../storage/schema.ts';
import type { ListQueryValue } from '../schemas.ts';
import { limitOf, pageOf } from './page-of.ts';

/** Tables of records that belong to one organization and page by id. */
export type TenantTable = 'workflows' | 'integrations';

/**
 * Reads of a tenant table that always carry `org_id`: another organization's id answers 404
 * exactly like a missing one, and lists never cross tenants.
 */
export function tenantTable<T extends TenantTable>(db: Kysely<DatabaseSchema>, table: T) {
  type Row = Selectable<DatabaseSchema[T]>;
  // Both tables have `id` and `org_id`; Kysely cannot see that through the type parameter.
  const rows = (org: string) =>
    (db as unknown as Kysely<Record<TenantTable, { id: string; org_id: string }>>)
      .selectFrom(table as TenantTable)
      .selectAll()
      .where('org_id', '=', org);
  return {
    /** The record, or 404 when it does not exist in `org`. */
    async find(org: string, id: string): Promise<Row> {
      const row = await rows(org).where('id', '=', id).executeTakeFirst();
      if (!row) throw new BastionError(HttpErrors.notFound);
      return row as unknown as Row;
    },
    /** A page of `org`'s records, oldest first, as `{items, next_cursor}`. */
    async page<Item>(org: string, query: ListQueryValue, toItem: (row: Row) => Item) {
      const limit = limitOf(query);
      let select = rows(org);
      if (query.cursor) select = select.where('id', '>', query.cursor);
      const found = (await select
        .orderBy('id')
        .limit(limit + 1)
        .execute()) as unknown as Row[];
      return pageOf(found, limit, (row) => (row as { id: string }).id, toItem);
    },
  };
}
