import { type Kysely, type MigrationResultSet, Migrator, sql } from 'kysely';
import type { Database } from './database.ts';
import { MIGRATIONS } from './migration-list.ts';

/** One migration and whether it has run. */
export interface MigrationState {
  name: string;
  executedAt: Date | null;
}

const schemas = new WeakMap<Database, Promise<string | undefined>>();

/**
 * On PostgreSQL the bookkeeping tables are pinned to the schema the connection writes to:
 * otherwise Kysely takes a `kysely_migration` table in any other schema of the database (another
 * application's, say) for this one's.
 */
function migrationSchema(database: Database): Promise<string | undefined> {
  let schema = schemas.get(database);
  if (!schema) {
    schema =
      database.kind === 'postgres'
        ? sql<{ schema: string }>`select current_schema() as schema`
            .execute(database.db)
            .then((result) => result.rows[0]?.schema)
        : Promise.resolve(undefined);
    schemas.set(database, schema);
  }
  return schema;
}

async function migrator(database: Database): Promise<Migrator> {
  const migrationTableSchema = await migrationSchema(database);
  return new Migrator({
    // The migrator reads and writes its own bookkeeping tables, which the schema type does not list.
    db: database.db as Kysely<unknown>,
    provider: { getMigrations: async () => MIGRATIONS },
    ...(migrationTableSchema ? { migrationTableSchema } : {}),
  });
}

/** Every known migration with when it ran (null: pending). */
export async function migrationStatus(database: Database): Promise<MigrationState[]> {
  const migrations = await (await migrator(database)).getMigrations();
  return migrations.map((migration) => ({ name: migration.name, executedAt: migration.executedAt ?? null }));
}

/** Names of the migrations that have not run. */
export async function pendingMigrations(database: Database): Promise<string[]> {
  return (await migrationStatus(database))
    .filter((state) => state.executedAt === null)
    .map((state) => state.name);
}

/** Applies every pending migration in order; throws with the failing migration's name. */
export async function migrateUp(database: Database): Promise<string[]> {
  const result: MigrationResultSet = await (await migrator(database)).migrateToLatest();
  const failed = result.results?.find((item) => item.status === 'Error');
  if (result.error) {
    const reason = result.error instanceof Error ? result.error.message : String(result.error);
    throw new Error(`Migration ${failed?.migrationName ?? '(unknown)'} failed: ${reason}`, {
      cause: result.error,
    });
  }
  return (result.results ?? []).filter((item) => item.status === 'Success').map((item) => item.migrationName);
}
