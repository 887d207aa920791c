import { DEFAULT_LIMIT, type ListQueryValue } from '../schemas.ts';

/** The page size a list query asks for (default {@link DEFAULT_LIMIT}). */
export function limitOf(query: ListQueryValue): number {
  return query.limit ?? DEFAULT_LIMIT;
}

/**
 * Cuts `rows` (fetched with `limit + 1`) into `{items, next_cursor}`: the cursor is the key of the
 * last item shown when more rows exist, else null.
 */
export function pageOf<Row, Item>(
  rows: Row[],
  limit: number,
  cursorOf: (row: Row) => string,
  toItem: (row: Row) => Item,
): { items: Item[]; next_cursor: string | null } {
  const page = rows.slice(0, limit);
  return {
    items: page.map(toItem),
    next_cursor: rows.length > limit ? cursorOf(page[page.length - 1]!) : null,
  };
}
