import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Clock } from '../core/clock.ts';
import type { DatabaseSchema } from './schema.ts';

/** Reads an instance-wide setting. */
export async function getSetting(db: Kysely<DatabaseSchema>, key: string): Promise<string | null> {
  const row = await db
    .selectFrom('instance_settings')
    .select('value')
    .where('key', '=', key)
    .executeTakeFirst();
  return row?.value ?? null;
}

/**
 * The installation's id, created on first start. Concurrent first starts agree: the insert
 * ignores a conflict and everyone reads back the winner.
 */
export async function ensureInstallationId(db: Kysely<DatabaseSchema>, clock: Clock): Promise<string> {
  const existing = await getSetting(db, 'installation_id');
  if (existing) return existing;
  await db
    .insertInto('instance_settings')
    .values({ key: 'installation_id', value: randomUUID(), updated_at: new Date(clock.now()).toISOString() })
    .onConflict((conflict) => conflict.column('key').doNothing())
    .execute();
  return (await getSetting(db, 'installation_id')) as string;
}
