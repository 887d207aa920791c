import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPostgresSchema } from '../../test/support/app.ts';
import { DATABASE_URL_TEST, postgresAvailable } from '../../test/support/services.ts';
import { systemClock } from '../core/clock.ts';
import { type Database, databaseKind, openDatabase, operationOf, type QueryEvent } from './database.ts';
import { ensureInstallationId, getSetting } from './instance-settings.ts';
import { MIGRATIONS } from './migration-list.ts';
import { migrateUp, migrationStatus, pendingMigrations } from './migrator.ts';

const pgUp = await postgresAvailable();
const MIGRATION_NAMES = Object.keys(MIGRATIONS).sort();

describe('operationOf', () => {
  it.each([
    ['  SELECT * FROM t', 'select'],
    ['\n\tselect 1', 'select'],
    ['insert into t values (?)', 'insert'],
    ['Update t set a = 1', 'update'],
    ['delete from t', 'delete'],
    ['with x as (select 1) select * from x', 'with'],
    ['create table if not exists t (a int)', 'create'],
    ['alter table t add column b int', 'alter'],
    ['drop table t', 'drop'],
    ['pragma journal_mode', 'pragma'],
    ['vacuum', 'other'],
    ['begin', 'other'],
    ['', 'other'],
    ['(select 1)', 'other'],
    ['selectx 1', 'other'],
    ['SELECTING', 'other'],
  ])('%j → %s', (text, expected) => {
    expect(operationOf(text)).toBe(expected);
  });

  it('never returns anything outside its small label set, whatever the text', () => {
    const allowed = new Set([
      'select',
      'insert',
      'update',
      'delete',
      'with',
      'create',
      'alter',
      'drop',
      'pragma',
      'other',
    ]);
    const texts = [
      "select_user_secret_'; drop table users; --",
      'sElEcT 1',
      'x'.repeat(10_000),
      ...Array.from({ length: 200 }, (_, i) => `${Math.random().toString(36).slice(2)}${i} from t`),
    ];
    for (const text of texts) expect(allowed).toContain(operationOf(text));
  });
});

describe('databaseKind', () => {
  it('accepts sqlite: and postgres(ql)://', () => {
    expect(databaseKind('sqlite:./data/bastion.db')).toBe('sqlite');
    expect(databaseKind('sqlite::memory:')).toBe('sqlite');
    expect(databaseKind('postgres://u@h/db')).toBe('postgres');
    expect(databaseKind('postgresql://u@h/db')).toBe('postgres');
  });

  it('rejects other engines with a TypeError that does not echo the URL credentials', () => {
    const secret = 'mysqlpw-9f8e7d6c';
    for (const url of [`mysql://root:${secret}@db/app`, `http://u:${secret}@x`, 'bastion.db', '']) {
      let caught: unknown;
      try {
        databaseKind(url);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(TypeError);
      expect((caught as Error).message).not.toContain(secret);
    }
    expect(() => openDatabase({ url: 'mysql://root@db/app' })).toThrow(TypeError);
  });

  it('refuses a PostgreSQL schema name that is not a plain identifier', () => {
    for (const schema of ['x; drop schema public cascade', 'a b', 'x"y', "x' -c log_statement=all", '1abc']) {
      expect(() => openDatabase({ url: 'postgres://u@127.0.0.1:1/db', schema })).toThrow(TypeError);
    }
  });
});

interface Backend {
  name: 'sqlite' | 'postgres';
  open(onQuery?: (event: QueryEvent) => void, busyTimeoutMs?: number): Promise<Database>;
  cleanup(): Promise<void>;
}

function sqliteBackend(): Backend {
  let dir: string | undefined;
  return {
    name: 'sqlite',
    async open(onQuery, busyTimeoutMs) {
      dir ??= await mkdtemp(path.join(os.tmpdir(), 'bastion-db-'));
      return openDatabase({
        url: `sqlite:${path.join(dir, 'nested', 'bastion.db')}`,
        onQuery,
        busyTimeoutMs,
      });
    },
    async cleanup() {
      if (dir) await rm(dir, { recursive: true, force: true });
      dir = undefined;
    },
  };
}

function postgresBackend(): Backend {
  let schema: Awaited<ReturnType<typeof createPostgresSchema>> | undefined;
  return {
    name: 'postgres',
    async open(onQuery) {
      schema ??= await createPostgresSchema();
      return openDatabase({ url: DATABASE_URL_TEST, schema: schema.schema, poolMax: 4, onQuery });
    },
    async cleanup() {
      await schema?.drop();
      schema = undefined;
    },
  };
}

describe.each([
  { engine: 'SQLite', make: sqliteBackend, skip: false },
  { engine: 'PostgreSQL', make: postgresBackend, skip: !pgUp },
])('database on $engine', ({ make, skip }) => {
  let backend: Backend;
  let database: Database | undefined;
  let events: QueryEvent[];

  beforeEach(() => {
    backend = make();
    events = [];
  });
  afterEach(async () => {
    await database?.close();
    database = undefined;
    await backend.cleanup();
  });

  const open = async (busyTimeoutMs?: number) => {
    database = await backend.open((event) => events.push(event), busyTimeoutMs);
    return database;
  };

  it.skipIf(skip)('reports the engine it opened', async () => {
    const db = await open();
    expect(db.kind).toBe(backend.name);
  });

  it.skipIf(skip)(
    'shows migrations pending, then applied after migrateUp; a second run does nothing',
    async () => {
      await open();
      const before = await migrationStatus(database!);
      expect(before.map((m) => m.name)).toEqual(MIGRATION_NAMES);
      expect(before.every((m) => m.executedAt === null)).toBe(true);
      expect(await pendingMigrations(database!)).toEqual(MIGRATION_NAMES);

      expect(await migrateUp(database!)).toEqual(MIGRATION_NAMES);
      const after = await migrationStatus(database!);
      expect(after.map((m) => m.name)).toEqual(MIGRATION_NAMES);
      for (const migration of after) expect(migration.executedAt).toBeInstanceOf(Date);
      expect(await pendingMigrations(database!)).toEqual([]);

      expect(await migrateUp(database!)).toEqual([]);
      expect(await pendingMigrations(database!)).toEqual([]);
    },
  );

  it.skipIf(skip)(
    'gives the same installation id across calls and to 20 concurrent first calls',
    async () => {
      const { db } = await open();
      await migrateUp(database!);
      const ids = await Promise.all(Array.from({ length: 20 }, () => ensureInstallationId(db, systemClock)));
      const [first] = ids;
      expect(first).toMatch(/^[0-9a-f-]{36}$/);
      expect(new Set(ids).size).toBe(1);
      expect(await ensureInstallationId(db, systemClock)).toBe(first);
      expect(await getSetting(db, 'installation_id')).toBe(first);
      const rows = await db.selectFrom('instance_settings').selectAll().execute();
      expect(rows.filter((row) => row.key === 'installation_id')).toHaveLength(1);
    },
  );

  it.skipIf(skip)('keeps the installation id after closing and reopening', async () => {
    let db = (await open()).db;
    await migrateUp(database!);
    const id = await ensureInstallationId(db, systemClock);
    await database!.close();
    db = (await open()).db;
    expect(await ensureInstallationId(db, systemClock)).toBe(id);
  });

  it.skipIf(skip)('reports each query to onQuery with its operation kind, and failures', async () => {
    const { db } = await open();
    await migrateUp(database!);
    await ensureInstallationId(db, systemClock);
    const operations = new Set(events.map((e) => e.operation));
    for (const kind of ['create', 'select', 'insert']) expect(operations).toContain(kind);
    expect(events.every((e) => e.failed === false)).toBe(true);
    expect(events.every((e) => e.durationMs >= 0 && typeof e.sql === 'string')).toBe(true);

    events.length = 0;
    await expect(sql`select * from no_such_table_here`.execute(db)).rejects.toThrow();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ operation: 'select', failed: true });

    events.length = 0;
    await expect(sql`selec 1`.execute(db)).rejects.toThrow();
    expect(events[0]).toMatchObject({ operation: 'other', failed: true });
  });

  it.skipIf(skip)('gives onQuery the SQL text without parameter values', async () => {
    const { db } = await open();
    await migrateUp(database!);
    events.length = 0;
    const secret = `planted-${Math.random().toString(36).slice(2)}-secret`;
    await db
      .insertInto('instance_settings')
      .values({ key: 'probe', value: secret, updated_at: new Date().toISOString() })
      .execute();
    await sql`select ${secret} as v`.execute(db);
    expect(events.map((e) => e.operation)).toEqual(['insert', 'select']);
    for (const event of events) expect(event.sql).not.toContain(secret);
  });

  it.skipIf(skip)('pings', async () => {
    const db = await open();
    const latency = await db.ping();
    expect(typeof latency).toBe('number');
    expect(latency).toBeGreaterThanOrEqual(0);
  });

  it.skipIf(skip)('reports pool statistics on PostgreSQL only', async () => {
    const db = await open();
    await db.ping();
    const stats = db.poolStats();
    if (backend.name === 'sqlite') {
      expect(stats).toBeNull();
      return;
    }
    expect(stats).not.toBeNull();
    expect(stats!.max).toBe(4);
    expect(stats!.total).toBeGreaterThanOrEqual(1);
    expect(stats!.idle).toBeLessThanOrEqual(stats!.total);
    expect(stats!.waiting).toBe(0);
  });
});

describe('SQLite connection settings', () => {
  let dir: string;
  let database: Database | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'bastion-db-'));
  });
  afterEach(async () => {
    await database?.close();
    database = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  const pragma = async (name: string) => {
    const result = await sql.raw<Record<string, unknown>>(`pragma ${name}`).execute(database!.db);
    return Object.values(result.rows[0] ?? {})[0];
  };

  it('uses WAL, foreign keys and the configured busy timeout', async () => {
    database = openDatabase({ url: `sqlite:${path.join(dir, 'a.db')}`, busyTimeoutMs: 1234 });
    expect(await pragma('journal_mode')).toBe('wal');
    expect(await pragma('foreign_keys')).toBe(1);
    expect(await pragma('busy_timeout')).toBe(1234);
  });

  it('defaults the busy timeout to 5000 ms and creates the directory', async () => {
    database = openDatabase({ url: `sqlite:${path.join(dir, 'deep', 'er', 'b.db')}` });
    expect(await pragma('busy_timeout')).toBe(5000);
    expect(await pragma('journal_mode')).toBe('wal');
  });

  it('enforces foreign keys', async () => {
    database = openDatabase({ url: `sqlite:${path.join(dir, 'c.db')}` });
    const db = database.db;
    await sql`create table parent (id integer primary key)`.execute(db);
    await sql`create table child (id integer primary key, parent_id integer not null references parent(id))`.execute(
      db,
    );
    await expect(sql`insert into child (id, parent_id) values (1, 42)`.execute(db)).rejects.toThrow(
      /FOREIGN KEY/,
    );
  });
});
