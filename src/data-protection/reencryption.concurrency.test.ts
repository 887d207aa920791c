import { randomBytes, randomInt } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { Kysely } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import {
  captureLogger,
  createTestDatabase,
  insertSecretRows,
  readSecretRows,
  secretRows,
  type TestDatabase,
} from '../../test/support/reencryption-fixtures.ts';
import { postgresAvailable } from '../../test/support/services.ts';
import { systemClock } from '../core/clock.ts';
import type { DatabaseSchema } from '../storage/schema.ts';
import { MemoryState } from '../storage/stores/memory-state.ts';
import { encryptedColumn, SECRET_VALUE } from './encrypted-columns.ts';
import { FieldCipher, keyIdOf } from './field-cipher.ts';
import { Keyring } from './keyring.ts';
import { ReencryptionJob } from './reencryption.ts';

const pgUp = await postgresAvailable();

const WRITERS = 3;
const READERS = 3;

/**
 * What the application side of the test wrote: the latest value of every row, and every value a
 * row has ever held (a reader racing a writer may see either the old or the new one).
 */
class Ledger {
  readonly latest = new Map<string, string>();
  readonly history = new Map<string, Set<string>>();

  record(name: string, version: number, value: string): void {
    const key = `${name}#${version}`;
    this.latest.set(key, value);
    const seen = this.history.get(key) ?? new Set();
    seen.add(value);
    this.history.set(key, seen);
  }

  /** Called before a write starts, so a reader that sees the new value finds it listed. */
  expect(name: string, version: number, value: string): void {
    const key = `${name}#${version}`;
    const seen = this.history.get(key) ?? new Set();
    seen.add(value);
    this.history.set(key, seen);
  }
}

async function writer(
  index: number,
  db: Kysely<DatabaseSchema>,
  cipher: FieldCipher,
  ledger: Ledger,
  running: () => boolean,
): Promise<number> {
  const column = encryptedColumn(cipher, SECRET_VALUE);
  const name = `writer-${index}`;
  const now = new Date().toISOString();
  await db
    .insertInto('secrets')
    .values({ name, current_version: 0, created_at: now, rotated_at: now })
    .execute();
  let versions = 0;
  let writes = 0;
  while (running()) {
    const owned = [...ledger.latest.keys()].filter(
      (key) => key.startsWith(`${name}#`) || hashOf(key) === index,
    );
    const target = owned[randomInt(Math.max(owned.length, 1))];
    if (writes % 2 === 0 || !target) {
      // A new version of this writer's own secret.
      versions += 1;
      const value = `${name} v${versions} ${randomBytes(4).toString('hex')}`;
      ledger.expect(name, versions, value);
      await db
        .insertInto('secret_versions')
        .values({
          name,
          version: versions,
          value: column.seal({ name, version: versions }, value),
          created_at: now,
        })
        .execute();
      await db.updateTable('secrets').set({ current_version: versions }).where('name', '=', name).execute();
      ledger.record(name, versions, value);
    } else {
      // Overwrite an existing row this writer owns: the job must never put the old value back.
      const [rowName, rowVersion] = splitKey(target);
      const value = `rewritten by ${index}: ${randomBytes(4).toString('hex')}`;
      ledger.expect(rowName, rowVersion, value);
      await db
        .updateTable('secret_versions')
        .set({ value: column.seal({ name: rowName, version: rowVersion }, value) })
        .where('name', '=', rowName)
        .where('version', '=', rowVersion)
        .execute();
      ledger.record(rowName, rowVersion, value);
    }
    writes += 1;
    await delay(randomInt(3));
  }
  return writes;
}

async function reader(
  db: Kysely<DatabaseSchema>,
  cipher: FieldCipher,
  ledger: Ledger,
  failures: string[],
  running: () => boolean,
): Promise<number> {
  const column = encryptedColumn(cipher, SECRET_VALUE);
  let reads = 0;
  while (running()) {
    const keys = [...ledger.latest.keys()];
    const key = keys[randomInt(keys.length)];
    if (key) {
      const [name, version] = splitKey(key);
      const row = await db
        .selectFrom('secret_versions')
        .select('value')
        .where('name', '=', name)
        .where('version', '=', version)
        .executeTakeFirst();
      try {
        if (!row) throw new Error('row missing');
        const value = await column.open({ name, version }, row.value);
        if (!ledger.history.get(key)?.has(value)) throw new Error('a value that was never written');
        reads += 1;
      } catch (error) {
        failures.push(`${key}: ${(error as Error).message}`);
      }
    }
    await delay(randomInt(2));
  }
  return reads;
}

function splitKey(key: string): [string, number] {
  const at = key.lastIndexOf('#');
  return [key.slice(0, at), Number(key.slice(at + 1))];
}

function hashOf(key: string): number {
  let hash = 0;
  for (const char of key) hash = (hash * 31 + char.charCodeAt(0)) % 1_000_003;
  return hash % WRITERS;
}

describe.each([
  { kind: 'sqlite' as const, skip: false },
  { kind: 'postgres' as const, skip: !pgUp },
])('rotation under concurrent reads and writes on $kind', ({ kind, skip }) => {
  let testDb: TestDatabase | null = null;
  afterEach(async () => {
    await testDb?.close();
    testDb = null;
  });

  it.skipIf(skip)(
    'rotates twice while rows are read and written: no failed read, no lost write, all rows end under the active key',
    async () => {
      testDb = await createTestDatabase(kind);
      // Two instances: the application (readers and writers) and the one running the job, each with
      // its own connection and keyring, told of rotations through shared state.
      const state = new MemoryState();
      const masterKey = randomBytes(32);
      const appDb = testDb.database.db;
      const jobDb = testDb.connect().db;
      const appKeyring = await Keyring.open({ db: appDb, masterKey, clock: systemClock, state });
      const jobKeyring = await Keyring.open({ db: jobDb, masterKey, clock: systemClock, state });
      const appCipher = new FieldCipher(appKeyring);
      const jobCipher = new FieldCipher(jobKeyring);
      const ledger = new Ledger();
      const seeded = secretRows(90);
      await insertSecretRows(appDb, appCipher, seeded);
      for (const row of seeded) ledger.record(row.name, row.version, row.value);

      const { logger } = captureLogger();
      const job = new ReencryptionJob({
        db: jobDb,
        cipher: jobCipher,
        keyring: jobKeyring,
        logger,
        batchSize: 7,
        maxRowsPerSecond: 1500,
      });

      let running = true;
      const isRunning = () => running;
      const readFailures: string[] = [];
      const writers = Array.from({ length: WRITERS }, (_, index) =>
        writer(index, appDb, appCipher, ledger, isRunning),
      );
      const readers = Array.from({ length: READERS }, () =>
        reader(appDb, appCipher, ledger, readFailures, isRunning),
      );
      const keysUsed = new Set<string>();
      let moved = 0;
      let conflicts = 0;
      try {
        await delay(40);
        for (let rotation = 0; rotation < 2; rotation += 1) {
          keysUsed.add((await jobKeyring.rotate('field')).id);
          const result = await job.runOnce();
          moved += result.reencrypted;
          conflicts += result.conflicts;
          expect(result.failed).toBe(0);
          await delay(30);
        }
      } finally {
        running = false;
      }
      const writes = (await Promise.all(writers)).reduce((sum, count) => sum + count, 0);
      const reads = (await Promise.all(readers)).reduce((sum, count) => sum + count, 0);
      // Rows written under the previous key just before the application instance heard of the
      // rotation are swept up now that the writers have stopped.
      const final = await job.runOnce();
      expect(final.failed).toBe(0);

      expect(readFailures).toEqual([]);
      expect(reads).toBeGreaterThan(20);
      expect(writes).toBeGreaterThan(10);
      expect(moved).toBeGreaterThanOrEqual(seeded.length);
      expect(final.remaining.total).toBe(0);

      const active = jobKeyring.active('field').id;
      expect(appKeyring.active('field').id).toBe(active);
      expect(keysUsed.has(active)).toBe(true);
      const stored = await readSecretRows(appDb, appCipher);
      expect(stored.length).toBe(ledger.latest.size);
      for (const row of stored) {
        expect(keyIdOf(row.stored)).toBe(active);
        expect(row.value, `${row.name}#${row.version}`).toBe(ledger.latest.get(`${row.name}#${row.version}`));
      }
      const states = jobKeyring.list().filter((key) => key.purpose === 'field');
      expect(states.filter((key) => key.state === 'active')).toHaveLength(1);
      expect(states.filter((key) => key.state === 'retired')).toHaveLength(2);
      // Not asserted (timing decides), but worth seeing when the test is tuned.
      logger.info({ writes, reads, moved, conflicts }, 'concurrency test totals');

      await appKeyring.close();
      await jobKeyring.close();
      await state.close();
    },
    30_000,
  );
});
