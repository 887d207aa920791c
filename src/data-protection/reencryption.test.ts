import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startTestApp } from '../../test/support/app.ts';
import {
  captureLogger,
  createTestDatabase,
  insertSecretRows,
  readSecretRows,
  secretRows,
  type TestDatabase,
} from '../../test/support/reencryption-fixtures.ts';
import { postgresAvailable } from '../../test/support/services.ts';
import { ManualClock } from '../core/clock.ts';
import { MemoryState } from '../storage/stores/memory-state.ts';
import { FieldCipher, keyIdOf } from './field-cipher.ts';
import { Keyring } from './keyring.ts';
import { ReencryptionJob, type ReencryptionOptions } from './reencryption.ts';

const pgUp = await postgresAvailable();
const backends = [
  { kind: 'sqlite' as const, skip: false },
  { kind: 'postgres' as const, skip: !pgUp },
];

async function metric(registry: Registry, name: string): Promise<number> {
  const found = await registry.getSingleMetric(name)?.get();
  return (found?.values ?? []).reduce((sum, value) => sum + value.value, 0);
}

describe.each(backends)('ReencryptionJob on $kind', ({ kind, skip }) => {
  let testDb: TestDatabase | null = null;
  afterEach(async () => {
    await testDb?.close();
    testDb = null;
  });

  async function setup(count: number) {
    testDb = await createTestDatabase(kind);
    const db = testDb.database.db;
    const keyring = await Keyring.open({ db, masterKey: randomBytes(32), clock: new ManualClock() });
    const cipher = new FieldCipher(keyring);
    const rows = secretRows(count);
    await insertSecretRows(db, cipher, rows);
    const { logger, logs } = captureLogger();
    const registry = new Registry();
    const clock = new ManualClock();
    const slept: number[] = [];
    const job = (options: Partial<ReencryptionOptions> = {}) =>
      new ReencryptionJob({
        db,
        cipher,
        keyring,
        logger,
        registry,
        clock,
        sleep: async (ms) => {
          slept.push(ms);
          clock.advance(ms);
        },
        ...options,
      });
    return { db, keyring, cipher, rows, logs, registry, slept, job };
  }

  it.skipIf(skip)(
    'moves every row to the new key, retires the old one, and logs progress without values',
    async () => {
      const { db, keyring, cipher, rows, logs, registry, job } = await setup(23);
      const old = keyring.active('field').id;
      const none = await job().remaining();
      expect(none.total).toBe(0);

      const rotated = await keyring.rotate('field');
      const reencryption = job({ batchSize: 5 });
      const before = await reencryption.remaining();
      // Every encrypted column is listed; only the vault has rows in this test.
      expect(before.total).toBe(23);
      expect(before.columns.filter((column) => column.rows > 0)).toEqual([
        { table: 'secret_versions', column: 'value', rows: 23 },
      ]);

      const result = await reencryption.runOnce();
      expect(result).toMatchObject({
        reencrypted: 23,
        failed: 0,
        conflicts: 0,
        retired: [old],
        stopped: false,
      });
      expect(result.remaining.total).toBe(0);
      expect((await reencryption.remaining()).total).toBe(0);

      const stored = await readSecretRows(db, cipher);
      expect(stored.map(({ name, version, value }) => ({ name, version, value }))).toEqual(rows);
      for (const row of stored) expect(keyIdOf(row.stored)).toBe(rotated.id);
      expect(keyring.list().find((key) => key.id === old)?.state).toBe('retired');

      expect(await metric(registry, 'bastion_reencryption_rows_total')).toBe(23);
      expect(await metric(registry, 'bastion_reencryption_remaining_rows')).toBe(0);
      expect(await metric(registry, 'bastion_reencryption_failures_total')).toBe(0);
      const progress = logs.lines.filter((line) => line.event === 'reencryption_progress');
      expect(progress.map((line) => line.done)).toEqual([5, 10, 15, 20, 23]);
      expect(progress.map((line) => line.remaining)).toEqual([18, 13, 8, 3, 0]);
      for (const row of stored) {
        expect(logs.text).not.toContain(row.value);
        expect(logs.text).not.toContain(row.stored.slice(25));
      }

      // Nothing left: a second run does nothing and retires nothing.
      const again = await reencryption.runOnce();
      expect(again).toMatchObject({ reencrypted: 0, retired: [] });
    },
  );

  it.skipIf(skip)('honours maxRowsPerSecond through the injected sleep', async () => {
    const { keyring, slept, job } = await setup(30);
    await keyring.rotate('field');
    const result = await job({ batchSize: 10, maxRowsPerSecond: 20 }).runOnce();
    expect(result.reencrypted).toBe(30);
    // 30 rows at 20 rows/s take 1.5 s; the manual clock stands still while the database works.
    expect(slept).toEqual([500, 500, 500]);
    expect(slept.reduce((sum, ms) => sum + ms, 0)).toBe(1500);
  });

  it.skipIf(skip)('counts and skips a row that cannot be decrypted, and finishes the rest', async () => {
    const { db, keyring, cipher, registry, logs, job } = await setup(12);
    const old = keyring.active('field').id;
    await keyring.rotate('field');
    const victim = await db
      .selectFrom('secret_versions')
      .selectAll()
      .where('name', '=', 'app/secret-1')
      .where('version', '=', 3)
      .executeTakeFirstOrThrow();
    // Same key id prefix, altered body: still counted as under the old key, but it will not open.
    const corrupted = `${victim.value.slice(0, -4)}AAAA`;
    await db
      .updateTable('secret_versions')
      .set({ value: corrupted })
      .where('name', '=', victim.name)
      .where('version', '=', victim.version)
      .execute();

    const reencryption = job({ batchSize: 4 });
    const result = await reencryption.runOnce();
    expect(result).toMatchObject({ reencrypted: 11, failed: 1, retired: [] });
    expect(result.remaining.total).toBe(1);
    expect(await metric(registry, 'bastion_reencryption_failures_total')).toBe(1);
    expect(keyring.list().find((key) => key.id === old)?.state).toBe('decrypt-only');
    const failures = logs.lines.filter((line) => line.event === 'reencryption_row_failed');
    expect(failures).toEqual([
      expect.objectContaining({ table: 'secret_versions', column: 'value', row_id: 'app/secret-1#3' }),
    ]);
    expect(logs.text).not.toContain(corrupted.slice(20));

    const after = await db.selectFrom('secret_versions').selectAll().execute();
    const untouched = after.find((row) => row.name === victim.name && Number(row.version) === 3);
    expect(untouched?.value).toBe(corrupted);
    for (const row of after.filter((each) => each !== untouched)) {
      expect(keyIdOf(row.value)).toBe(keyring.active('field').id);
      await expect(
        cipher.decrypt(row.value, {
          table: 'secret_versions',
          column: 'value',
          rowId: `${row.name}#${row.version}`,
        }),
      ).resolves.toBeTypeOf('string');
    }

    // A later run meets the same row once more, fails it once, and still ends.
    const again = await reencryption.runOnce();
    expect(again).toMatchObject({ reencrypted: 0, failed: 1 });
  });

  it.skipIf(skip)('stop() ends a run between batches; running again finishes the work', async () => {
    const { keyring, job } = await setup(20);
    await keyring.rotate('field');
    let reencryption: ReencryptionJob | null = null;
    let stopping: Promise<void> | null = null;
    reencryption = job({
      batchSize: 5,
      maxRowsPerSecond: 10,
      sleep: async () => {
        stopping ??= reencryption?.stop() ?? null;
      },
    });
    const result = await reencryption.runOnce();
    await stopping;
    expect(result.stopped).toBe(true);
    expect(result.reencrypted).toBe(5);
    expect(result.remaining.total).toBe(15);
    expect((await job().runOnce()).remaining.total).toBe(0);
  });

  it.skipIf(skip)(
    'runs in the background at start-up and after a rotation announced through shared state',
    async () => {
      testDb = await createTestDatabase(kind);
      const db = testDb.database.db;
      const state = new MemoryState();
      const masterKey = randomBytes(32);
      const keyring = await Keyring.open({ db, masterKey, clock: new ManualClock(), state });
      const cipher = new FieldCipher(keyring);
      await insertSecretRows(db, cipher, secretRows(8));
      await keyring.rotate('field');
      const { logger } = captureLogger();
      const job = new ReencryptionJob({ db, cipher, keyring, logger, state, maxRowsPerSecond: 10_000 });
      try {
        await job.start();
        await vi.waitFor(async () => expect((await job.remaining()).total).toBe(0), { timeout: 5000 });
        // Another instance rotates: this one hears of it and moves the rows again.
        const other = await Keyring.open({ db, masterKey, clock: new ManualClock(), state });
        const next = await other.rotate('field');
        await other.close();
        await vi.waitFor(
          async () => {
            const stored = await readSecretRows(db, cipher);
            expect(stored.every((row) => keyIdOf(row.stored) === next.id)).toBe(true);
          },
          { timeout: 5000 },
        );
      } finally {
        await job.stop();
        await keyring.close();
        await state.close();
      }
    },
  );

  it.skipIf(skip)('is started by the server and re-encrypts after keyring.rotate()', async () => {
    const test = await startTestApp({ database: kind });
    try {
      const { keyring, cipher, database, registry, reencryption } = test.app.bastion;
      await insertSecretRows(database.db, cipher, secretRows(6));
      const old = keyring.active('field').id;
      await keyring.rotate('field');
      await vi.waitFor(
        async () => expect(keyring.list().find((key) => key.id === old)?.state).toBe('retired'),
        { timeout: 5000 },
      );
      expect((await reencryption.remaining()).total).toBe(0);
      // The six secrets and the access-token signing key the server made at start-up.
      expect(await metric(registry, 'bastion_reencryption_rows_total')).toBe(7);
      const metrics = await test.app.inject({ method: 'GET', url: '/metrics' });
      expect(metrics.body).toContain('bastion_reencryption_remaining_rows');
    } finally {
      await test.close();
    }
  });
});
