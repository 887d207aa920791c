import { type Kysely, type MigrationResultSet, Migrator } from 'kysely';
import { MIGRATIONS } from './migration-list.ts';
import type { DatabaseSchema } from './schema.ts';

/** One migration and whether it has run. */
export interface MigrationState {
  name: string;
  executedAt: Date | null;
}

function migrator(db: Kysely<DatabaseSchema>): Migrator {
  // The migrator reads and writes its own bookkeeping tables, which the schema type does not list.
  return new Migrator({ db: db as Kysely<unknown>, provider: { getMigrations: async () => MIGRATIONS } });
}

/** Every known migration with when it ran (null: pending). */
export async function migrationStatus(db: Kysely<DatabaseSchema>): Promise<MigrationState[]> {
  const migrations = await migrator(db).getMigrations();
  return migrations.map((migration) => ({ name: migration.name, executedAt: migration.executedAt ?? null }));
}

/** Names of the migrations that have not run. */
export async function pendingMigrations(db: Kysely<DatabaseSchema>): Promise<string[]> {
  return (await migrationStatus(db)).filter((state) => state.executedAt === null).map((state) => state.name);
}

/** Applies every pending migration in order; throws with the failing migration's name. */
export async function migrateUp(db: Kysely<DatabaseSchema>): Promise<string[]> {
  const result: MigrationResultSet = await migrator(db).migrateToLatest();
  const failed = result.results?.find((item) => item.status === 'Error');
  if (result.error) {
    const reason = result.error instanceof Error ? result.error.message : String(result.error);
    throw new Error(`Migration ${failed?.migrationName ?? '(unknown)'} failed: ${reason}`, {
      cause: result.error,
    });
  }
  return (result.results ?? []).filter((item) => item.status === 'Success').map((item) => item.migrationName);
}
