import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresSchema } from '../../test/support/app.ts';
import { DATABASE_URL_TEST, postgresAvailable } from '../../test/support/services.ts';
import { ManualClock } from '../core/clock.ts';
import { type Database, openDatabase } from '../storage/database.ts';
import { migrateUp } from '../storage/migrator.ts';
import { MemoryState } from '../storage/stores/memory-state.ts';
import { BlindIndex, normalizers } from './blind-index.ts';
import { FieldCipher, keyIdOf } from './field-cipher.ts';
import { Keyring, rewrapDataKeys } from './keyring.ts';

const pgUp = await postgresAvailable();
const context = { table: 'users', column: 'email', rowId: 'u1' };

function flip(text: string, index: number): string {
  const chars = [...text];
  chars[index] = chars[index] === 'A' ? 'B' : 'A';
  return chars.join('');
}

const backends = [
  {
    name: 'SQLite',
    skip: false,
    async open(): Promise<{ database: Database; cleanup(): Promise<void> }> {
      const dir = await mkdtemp(path.join(tmpdir(), 'bastion-dp-'));
      const database = openDatabase({ url: `sqlite:${path.join(dir, 'dp.db')}` });
      return { database, cleanup: () => rm(dir, { recursive: true, force: true }) };
    },
  },
  {
    name: 'PostgreSQL',
    skip: !pgUp,
    async open(): Promise<{ database: Database; cleanup(): Promise<void> }> {
      const { schema, drop } = await createPostgresSchema();
      const database = openDatabase({ url: DATABASE_URL_TEST, schema });
      return { database, cleanup: drop };
    },
  },
];

for (const backend of backends) {
  describe.skipIf(backend.skip)(`field encryption on ${backend.name}`, () => {
    const masterKey = randomBytes(32);
    const clock = new ManualClock();
    let database: Database;
    let cleanup: () => Promise<void>;
    let keyring: Keyring;
    let cipher: FieldCipher;

    beforeAll(async () => {
      ({ database, cleanup } = await backend.open());
      await migrateUp(database);
      keyring = await Keyring.open({ db: database.db, masterKey, clock });
      cipher = new FieldCipher(keyring);
    });
    afterAll(async () => {
      await keyring.close();
      await database.close();
      await cleanup();
    });

    it('creates one active key per purpose on first start, and the same keys on the next', async () => {
      const states = keyring.list().map((key) => `${key.purpose}:${key.state}`);
      expect(states.sort()).toEqual(['blind-index:active', 'field:active', 'pseudonym:active']);
      const again = await Keyring.open({ db: database.db, masterKey, clock });
      expect(
        again
          .list()
          .map((key) => key.id)
          .sort(),
      ).toEqual(
        keyring
          .list()
          .map((key) => key.id)
          .sort(),
      );
      await again.close();
    });

    it('agrees on one active key when many instances start at once', async () => {
      await database.db.deleteFrom('data_keys').execute();
      const rings = await Promise.all(
        Array.from({ length: 8 }, () => Keyring.open({ db: database.db, masterKey, clock })),
      );
      const actives = new Set(rings.map((ring) => ring.active('field').id));
      expect(actives.size).toBe(1);
      const rows = await database.db
        .selectFrom('data_keys')
        .selectAll()
        .where('state', '=', 'active')
        .execute();
      expect(rows).toHaveLength(3);
      await Promise.all(rings.map((ring) => ring.close()));
      await keyring.reload();
    });

    it('round-trips values, with a fresh nonce every time', async () => {
      const values = ['jane@example.com', '', 'ünïcødé ✓', 'x'.repeat(70_000)];
      for (const value of values) {
        const sealed = cipher.encrypt(value, context);
        expect(sealed).not.toContain(value || '\u0000');
        expect(keyIdOf(sealed)).toBe(keyring.active('field').id);
        expect(await cipher.decrypt(sealed, context)).toBe(value);
      }
      const a = cipher.encrypt('same', context);
      const b = cipher.encrypt('same', context);
      expect(a).not.toBe(b);
    });

    it('refuses every altered ciphertext: each flipped character, truncation, extra parts', async () => {
      const sealed = cipher.encrypt('card 4111111111111111', context);
      const prefixLength = `v1.${keyIdOf(sealed)}.`.length;
      for (let index = prefixLength; index < sealed.length; index += 1) {
        if (sealed[index] === '.') continue;
        await expect(cipher.decrypt(flip(sealed, index), context), `index ${index}`).rejects.toMatchObject({
          code: 'BASTION_ERR_DECRYPT_FAILED',
        });
      }
      for (const broken of [
        sealed.slice(0, -2),
        `${sealed}.x`,
        sealed.replace(/^v1\./, 'v2.'),
        'plain text',
      ]) {
        await expect(cipher.decrypt(broken, context)).rejects.toMatchObject({
          code: 'BASTION_ERR_DECRYPT_FAILED',
        });
      }
    });

    it('refuses a ciphertext moved to another row, column or table', async () => {
      const sealed = cipher.encrypt('jane@example.com', context);
      for (const moved of [
        { ...context, rowId: 'u2' },
        { ...context, column: 'name' },
        { ...context, table: 'admins' },
        { table: 'users|email', column: 'u1', rowId: '' },
      ]) {
        await expect(cipher.decrypt(sealed, moved)).rejects.toMatchObject({
          code: 'BASTION_ERR_DECRYPT_FAILED',
        });
      }
    });

    it('refuses a forged key id: unknown, another purpose, or another field key', async () => {
      const sealed = cipher.encrypt('secret', context);
      const keyId = keyIdOf(sealed)!;
      const unknown = sealed.replace(keyId, 'dk0000000000000000');
      await expect(cipher.decrypt(unknown, context)).rejects.toMatchObject({
        code: 'BASTION_ERR_UNKNOWN_KEY',
      });
      const blindKey = keyring.active('blind-index').id;
      await expect(cipher.decrypt(sealed.replace(keyId, blindKey), context)).rejects.toMatchObject({
        code: 'BASTION_ERR_DECRYPT_FAILED',
      });
      const before = keyring.active('field').id;
      await keyring.rotate('field');
      const other = keyring.active('field').id;
      expect(other).not.toBe(before);
      await expect(cipher.decrypt(sealed.replace(keyId, other), context)).rejects.toMatchObject({
        code: 'BASTION_ERR_DECRYPT_FAILED',
      });
      // The original still opens: the rotated key is kept for decryption.
      expect(await cipher.decrypt(sealed, context)).toBe('secret');
      expect(keyring.list().find((key) => key.id === before)?.state).toBe('decrypt-only');
      expect(cipher.needsReencryption(sealed)).toBe(true);
    });

    it('lets another instance decrypt a value sealed under a key rotated elsewhere', async () => {
      const state = new MemoryState();
      const first = await Keyring.open({ db: database.db, masterKey, clock, state });
      const second = await Keyring.open({ db: database.db, masterKey, clock, state });
      await first.rotate('field');
      const sealed = new FieldCipher(first).encrypt('fresh', context);
      // Without waiting for the pub/sub message, the second instance reloads on the unknown id.
      expect(await new FieldCipher(second).decrypt(sealed, context)).toBe('fresh');
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(second.active('field').id).toBe(first.active('field').id);
      await first.close();
      await second.close();
      await state.close();
      await keyring.reload();
    });

    it('rejects a wrong master key, and rewrap moves every key to a new one', async () => {
      const sealed = cipher.encrypt('kept across master keys', context);
      const wrong = randomBytes(32);
      await expect(Keyring.open({ db: database.db, masterKey: wrong, clock })).rejects.toThrow(
        /cannot be unwrapped: BASTION_MASTER_KEY is not the key/,
      );
      const next = randomBytes(32);
      const count = (await database.db.selectFrom('data_keys').select('id').execute()).length;
      expect(await rewrapDataKeys(database.db, masterKey, next)).toBe(count);
      expect(await rewrapDataKeys(database.db, masterKey, next)).toBe(0);
      await expect(Keyring.open({ db: database.db, masterKey, clock })).rejects.toThrow(
        /cannot be unwrapped/,
      );
      const reopened = await Keyring.open({ db: database.db, masterKey: next, clock });
      expect(await new FieldCipher(reopened).decrypt(sealed, context)).toBe('kept across master keys');
      await expect(rewrapDataKeys(database.db, wrong, randomBytes(32))).rejects.toThrow(
        /neither the old nor the new/,
      );
      expect(await rewrapDataKeys(database.db, next, masterKey)).toBe(count);
      await reopened.close();
    });

    it('refuses a tampered wrapped key', async () => {
      const row = await database.db.selectFrom('data_keys').selectAll().limit(1).executeTakeFirstOrThrow();
      await database.db
        .updateTable('data_keys')
        .set({ wrapped_key: flip(row.wrapped_key, row.wrapped_key.length - 3) })
        .where('id', '=', row.id)
        .execute();
      await expect(Keyring.open({ db: database.db, masterKey, clock })).rejects.toThrow(
        /cannot be unwrapped/,
      );
      await database.db
        .updateTable('data_keys')
        .set({ wrapped_key: row.wrapped_key })
        .where('id', '=', row.id)
        .execute();
    });

    it('blind indexes: equal after normalisation, distinct per index name, fixed length', async () => {
      const email = new BlindIndex(keyring, 'users.email', normalizers.email);
      const other = new BlindIndex(keyring, 'users.backup_email', normalizers.email);
      const a = email.compute('  Jane@Example.COM ');
      expect(a).toBe(email.compute('jane@example.com'));
      expect(a).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(email.compute('jane@example.org')).not.toBe(a);
      expect(other.compute('jane@example.com')).not.toBe(a);
      // Stable across restarts: the index key is a stored data key, not per-process.
      const reopened = await Keyring.open({ db: database.db, masterKey, clock });
      expect(new BlindIndex(reopened, 'users.email', normalizers.email).compute('jane@example.com')).toBe(a);
      await reopened.close();
    });
  });
}
