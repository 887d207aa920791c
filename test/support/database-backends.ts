import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type Database, openDatabase } from '../../src/storage/database.ts';
import { migrateUp } from '../../src/storage/migrator.ts';
import { createPostgresSchema } from './app.ts';
import { DATABASE_URL_TEST } from './services.ts';

/**
 * Migrated databases on one engine; each `open()` is another connection to the same data (another
 * instance, or the same server restarted).
 */
export interface DatabaseBackend {
  open(): Promise<Database>;
  close(database: Database): Promise<void>;
  cleanup(): Promise<void>;
}

// Opens may run concurrently (instances starting together): the location is made once, as a promise.
function backendOf(
  connect: () => Promise<{ url: string; schema?: string }>,
  remove: () => Promise<void>,
  poolMax: number,
): DatabaseBackend {
  const opened = new Set<Database>();
  return {
    async open() {
      const { url, schema } = await connect();
      const database = openDatabase({ url, schema, poolMax });
      opened.add(database);
      await migrateUp(database);
      return database;
    },
    async close(database) {
      opened.delete(database);
      await database.close();
    },
    async cleanup() {
      for (const database of opened) await database.close();
      opened.clear();
      await remove();
    },
  };
}

/** A SQLite file in a temporary directory. */
export function sqliteBackend(options: { poolMax?: number } = {}): DatabaseBackend {
  let dir: Promise<string> | undefined;
  return backendOf(
    async () => {
      dir ??= mkdtemp(path.join(os.tmpdir(), 'bastion-db-'));
      return { url: `sqlite:${path.join(await dir, 'bastion.db')}` };
    },
    async () => {
      if (dir) await rm(await dir, { recursive: true, force: true });
    },
    options.poolMax ?? 4,
  );
}

/** A fresh schema in the test PostgreSQL database. */
export function postgresBackend(options: { poolMax?: number } = {}): DatabaseBackend {
  let schema: ReturnType<typeof createPostgresSchema> | undefined;
  return backendOf(
    async () => {
      schema ??= createPostgresSchema();
      return { url: DATABASE_URL_TEST, schema: (await schema).schema };
    },
    async () => {
      if (schema) await (await schema).drop();
    },
    options.poolMax ?? 4,
  );
}
