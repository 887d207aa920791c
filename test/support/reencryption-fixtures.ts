import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Kysely } from 'kysely';
import pino, { type Logger } from 'pino';
import { encryptedColumn, SECRET_VALUE } from '../../src/data-protection/encrypted-columns.ts';
import type { FieldCipher } from '../../src/data-protection/field-cipher.ts';
import { type Database, openDatabase } from '../../src/storage/database.ts';
import { migrateUp } from '../../src/storage/migrator.ts';
import type { DatabaseSchema } from '../../src/storage/schema.ts';
import { createPostgresSchema, LogCapture } from './app.ts';
import { DATABASE_URL_TEST } from './services.ts';

/** Where a test database lives, so a second connection (or a child process) can open it too. */
export interface TestDatabaseLocation {
  url: string;
  /** PostgreSQL schema (search_path); undefined for SQLite. */
  schema?: string;
}

/** A migrated, empty database of one engine, and how to reach it again. */
export interface TestDatabase {
  location: TestDatabaseLocation;
  database: Database;
  /** Another connection (pool) to the same database. */
  connect(): Database;
  close(): Promise<void>;
}

/** Creates a migrated database: a temp SQLite file, or a fresh schema in DATABASE_URL_TEST. */
export async function createTestDatabase(kind: 'sqlite' | 'postgres'): Promise<TestDatabase> {
  let location: TestDatabaseLocation;
  let dir: string | null = null;
  if (kind === 'sqlite') {
    dir = await mkdtemp(path.join(tmpdir(), 'bastion-reencrypt-'));
    location = { url: `sqlite:${path.join(dir, 'bastion.db')}` };
  } else {
    location = { url: DATABASE_URL_TEST, schema: (await createPostgresSchema()).schema };
  }
  const opened: Database[] = [];
  const connect = () => {
    const database = openDatabase({ ...location, poolMax: 4 });
    opened.push(database);
    return database;
  };
  const database = connect();
  await migrateUp(database);
  return {
    location,
    database,
    connect,
    async close() {
      await Promise.allSettled(opened.map((each) => each.close()));
      if (dir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** One stored secret value. */
export interface SecretRow {
  name: string;
  version: number;
  value: string;
}

/** `count` rows spread over secrets of `versions` versions each, with distinct random-ish values. */
export function secretRows(count: number, versions = 5, prefix = 'app/secret'): SecretRow[] {
  return Array.from({ length: count }, (_, index) => ({
    name: `${prefix}-${Math.floor(index / versions)}`,
    version: (index % versions) + 1,
    value: `value ${index} ${'x'.repeat(index % 7)} ✓`,
  }));
}

/** Inserts `rows` as secrets and secret versions, sealing each value with the cipher's active key. */
export async function insertSecretRows(
  db: Kysely<DatabaseSchema>,
  cipher: FieldCipher,
  rows: readonly SecretRow[],
): Promise<void> {
  const column = encryptedColumn(cipher, SECRET_VALUE);
  const now = new Date().toISOString();
  const names = [...new Set(rows.map((row) => row.name))];
  for (const name of names) {
    const current = Math.max(...rows.filter((row) => row.name === name).map((row) => row.version));
    await db
      .insertInto('secrets')
      .values({ name, current_version: current, created_at: now, rotated_at: now })
      .onConflict((conflict) => conflict.column('name').doNothing())
      .execute();
  }
  for (const row of rows) {
    await db
      .insertInto('secret_versions')
      .values({
        name: row.name,
        version: row.version,
        value: column.seal(row, row.value),
        created_at: now,
      })
      .execute();
  }
}

/** Every stored secret value, decrypted, with the key id it is under. */
export async function readSecretRows(
  db: Kysely<DatabaseSchema>,
  cipher: FieldCipher,
): Promise<Array<SecretRow & { stored: string }>> {
  const column = encryptedColumn(cipher, SECRET_VALUE);
  const rows = await db
    .selectFrom('secret_versions')
    .select(['name', 'version', 'value'])
    .orderBy('name')
    .orderBy('version')
    .execute();
  return Promise.all(
    rows.map(async (row) => ({
      name: row.name,
      version: Number(row.version),
      value: await column.open(row, row.value),
      stored: row.value,
    })),
  );
}

/** A JSON logger writing into a capture, for asserting on log lines. */
export function captureLogger(): { logger: Logger; logs: LogCapture } {
  const logs = new LogCapture();
  return { logger: pino({ level: 'debug' }, logs), logs };
}
