import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPostgresSchema } from '../../test/support/app.ts';
import { DATABASE_URL_TEST, postgresAvailable } from '../../test/support/services.ts';
import { ManualClock } from '../core/clock.ts';
import { type Database, openDatabase } from '../storage/database.ts';
import { migrateUp } from '../storage/migrator.ts';
import { FieldCipher, keyIdOf } from './field-cipher.ts';
import { Keyring } from './keyring.ts';
import { MAX_SECRET_VALUE_BYTES, SecretsVault } from './secrets-vault.ts';

const pgUp = await postgresAvailable();
const DAY = 86_400_000;
const START = '2026-01-01T00:00:00.000Z';

function planted(label: string): string {
  return `${label}-${randomBytes(12).toString('hex')}`;
}

function rejection(code: string, status: number) {
  return { name: 'BastionError', code, statusCode: status };
}

const NOT_FOUND = rejection('BASTION_ERR_SECRET_NOT_FOUND', 404);
const DECRYPT_FAILED = rejection('BASTION_ERR_DECRYPT_FAILED', 500);

describe.each([
  { backend: 'sqlite' as const, skip: false },
  { backend: 'postgres' as const, skip: !pgUp },
])('SecretsVault on $backend', ({ backend, skip }) => {
  let database: Database;
  let keyring: Keyring;
  let clock: ManualClock;
  let vault: SecretsVault;
  let dir: string | null = null;

  beforeEach(async (context) => {
    if (skip) return context.skip();
    clock = new ManualClock();
    if (backend === 'sqlite') {
      dir = await mkdtemp(path.join(os.tmpdir(), 'bastion-vault-'));
      database = openDatabase({ url: `sqlite:${path.join(dir, 'vault.db')}` });
    } else {
      const { schema } = await createPostgresSchema();
      database = openDatabase({ url: DATABASE_URL_TEST, schema });
    }
    await migrateUp(database);
    keyring = await Keyring.open({ db: database.db, masterKey: randomBytes(32), clock });
    vault = new SecretsVault({ db: database.db, cipher: new FieldCipher(keyring), clock });
  });

  afterEach(async () => {
    await keyring?.close();
    await database?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = null;
  });

  it('creates version 1 with its times, and get records the read', async () => {
    const value = planted('webhook');
    const created = await vault.set('stripe/webhook', value, { rotationPeriodDays: 30 });
    expect(created).toEqual({
      name: 'stripe/webhook',
      current_version: 1,
      created_at: START,
      rotated_at: START,
      last_read_at: null,
      rotation_period_days: 30,
      next_rotation_due: '2026-01-31T00:00:00.000Z',
      overdue: false,
    });
    expect(await vault.info('stripe/webhook')).toEqual(created);

    clock.advance(60_000);
    expect(await vault.get('stripe/webhook')).toEqual({
      name: 'stripe/webhook',
      version: 1,
      value,
      created_at: START,
    });
    expect((await vault.info('stripe/webhook')).last_read_at).toBe('2026-01-01T00:01:00.000Z');
  });

  it('refuses to set a name that exists (409) and keeps the first value', async () => {
    const first = planted('first');
    await vault.set('api/token', first);
    await expect(vault.set('api/token', planted('second'))).rejects.toMatchObject({
      ...rejection('BASTION_ERR_SECRET_EXISTS', 409),
      message: expect.stringContaining('use rotate'),
    });
    expect((await vault.get('api/token')).value).toBe(first);
    expect((await vault.info('api/token')).current_version).toBe(1);
  });

  it('rotates to new versions; each version keeps its own value and time', async () => {
    const values = [planted('v1'), planted('v2'), planted('v3')];
    await vault.set('db/password', values[0]!);
    clock.advance(DAY);
    const second = await vault.rotate('db/password', values[1]!);
    expect(second).toMatchObject({
      current_version: 2,
      created_at: START,
      rotated_at: '2026-01-02T00:00:00.000Z',
    });
    clock.advance(DAY);
    await vault.rotate('db/password', values[2]!);

    expect(await vault.get('db/password')).toEqual({
      name: 'db/password',
      version: 3,
      value: values[2],
      created_at: '2026-01-03T00:00:00.000Z',
    });
    for (const [index, value] of values.entries()) {
      const read = await vault.getVersion('db/password', index + 1);
      expect(read).toEqual({
        name: 'db/password',
        version: index + 1,
        value,
        created_at: new Date(Date.parse(START) + index * DAY).toISOString(),
      });
    }
    await expect(vault.getVersion('db/password', 4)).rejects.toMatchObject({
      ...NOT_FOUND,
      message: 'Secret "db/password" has no version 4',
    });
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      await expect(vault.getVersion('db/password', bad)).rejects.toMatchObject(NOT_FOUND);
    }
  });

  it('answers 404 for a secret that does not exist', async () => {
    const message = 'No secret named "missing"';
    await expect(vault.get('missing')).rejects.toMatchObject({ ...NOT_FOUND, message });
    await expect(vault.getVersion('missing', 1)).rejects.toMatchObject({ ...NOT_FOUND, message });
    await expect(vault.rotate('missing', 'x')).rejects.toMatchObject({ ...NOT_FOUND, message });
    await expect(vault.delete('missing')).rejects.toMatchObject({ ...NOT_FOUND, message });
    await expect(vault.info('missing')).rejects.toMatchObject({ ...NOT_FOUND, message });
    expect(await vault.list()).toEqual([]);
  });

  it('reports secrets past their rotation period, and a rotation clears it', async () => {
    await vault.set('monthly', planted('m'), { rotationPeriodDays: 30 });
    await vault.set('weekly', planted('w'), { rotationPeriodDays: 7 });
    await vault.set('forever', planted('f'));
    expect(await vault.overdue()).toEqual([]);
    expect(await vault.summary()).toEqual({ count: 3, rotation_overdue: [] });

    clock.advance(7 * DAY - 1);
    expect(await vault.overdue()).toEqual([]);
    clock.advance(1);
    expect(await vault.overdue()).toEqual(['weekly']);
    clock.advance(23 * DAY);
    expect(await vault.overdue()).toEqual(['monthly', 'weekly']);
    expect(await vault.summary()).toEqual({ count: 3, rotation_overdue: ['monthly', 'weekly'] });
    const listed = await vault.list();
    expect(listed.map((secret) => [secret.name, secret.overdue, secret.next_rotation_due])).toEqual([
      ['forever', false, null],
      ['monthly', true, '2026-01-31T00:00:00.000Z'],
      ['weekly', true, '2026-01-08T00:00:00.000Z'],
    ]);

    clock.advance(365 * DAY);
    await vault.rotate('weekly', planted('w2'));
    expect(await vault.overdue()).toEqual(['monthly']);
    // A rotation may also change the period; undefined keeps it, null removes it.
    const changed = await vault.rotate('monthly', planted('m2'), { rotationPeriodDays: 90 });
    expect(changed.rotation_period_days).toBe(90);
    expect(changed.next_rotation_due).toBe(new Date(clock.now() + 90 * DAY).toISOString());
    const kept = await vault.rotate('monthly', planted('m3'));
    expect(kept.rotation_period_days).toBe(90);
    const removed = await vault.rotate('monthly', planted('m4'), { rotationPeriodDays: null });
    expect(removed).toMatchObject({ rotation_period_days: null, next_rotation_due: null, overdue: false });
    clock.advance(10_000 * DAY);
    expect(await vault.overdue()).toEqual(['weekly']);
  });

  it('lists metadata only, sorted by name', async () => {
    const values = [planted('b'), planted('a'), planted('c')];
    await vault.set('svc:b', values[0]!);
    await vault.set('svc:a', values[1]!);
    await vault.set('Svc:c', values[2]!);
    await vault.rotate('svc:b', planted('b2'));
    const listed = await vault.list();
    expect(listed.map((secret) => secret.name)).toEqual(['Svc:c', 'svc:a', 'svc:b']);
    expect(listed.map((secret) => secret.current_version)).toEqual([1, 1, 2]);
    for (const secret of listed) expect(Object.keys(secret)).not.toContain('value');
    const text = JSON.stringify(listed);
    for (const value of values) expect(text).not.toContain(value);
  });

  it('deletes a secret with every version; the name can then be set again from version 1', async () => {
    await vault.set('temp', planted('t1'));
    await vault.rotate('temp', planted('t2'));
    await vault.set('other', planted('o'));
    await vault.delete('temp');
    await expect(vault.get('temp')).rejects.toMatchObject(NOT_FOUND);
    await expect(vault.getVersion('temp', 1)).rejects.toMatchObject(NOT_FOUND);
    const rows = await database.db.selectFrom('secret_versions').select('name').execute();
    expect(rows.map((row) => row.name)).toEqual(['other']);
    await expect(vault.delete('temp')).rejects.toMatchObject(NOT_FOUND);

    const again = planted('again');
    expect((await vault.set('temp', again)).current_version).toBe(1);
    expect(await vault.get('temp')).toMatchObject({ version: 1, value: again });
    expect((await vault.list()).map((secret) => secret.name)).toEqual(['other', 'temp']);
  });

  it('validates names on every operation', async () => {
    const invalid = rejection('BASTION_ERR_INVALID_SECRET_NAME', 400);
    const bad = ['', 'a b', 'x'.repeat(201), 'a#1', 'café', 'tab\t', 'new\nline', 'semi;colon', '*'];
    for (const name of bad) {
      await expect(vault.set(name, 'v'), JSON.stringify(name)).rejects.toMatchObject(invalid);
      await expect(vault.rotate(name, 'v')).rejects.toMatchObject(invalid);
      await expect(vault.get(name)).rejects.toMatchObject(invalid);
      await expect(vault.getVersion(name, 1)).rejects.toMatchObject(invalid);
      await expect(vault.delete(name)).rejects.toMatchObject(invalid);
      await expect(vault.info(name)).rejects.toMatchObject(invalid);
    }
    for (const name of ['x'.repeat(200), 'a', 'A.b_c-d/e:f', '0', 'team/prod:db.password-2']) {
      await vault.set(name, 'value');
      expect((await vault.get(name)).value).toBe('value');
    }
  });

  it('accepts any UTF-8 value up to 64 KiB and refuses larger, empty or malformed ones', async () => {
    const exact = 'a'.repeat(MAX_SECRET_VALUE_BYTES);
    await vault.set('exact', exact);
    expect((await vault.get('exact')).value).toBe(exact);
    const unicode = `pässwörd 🔑 密码 ${'\u0000'} \n\t "quoted" 'single' \\ ${'€'.repeat(100)}`;
    await vault.set('unicode', unicode);
    expect((await vault.get('unicode')).value).toBe(unicode);

    const tooLarge = rejection('BASTION_ERR_SECRET_VALUE_TOO_LARGE', 413);
    await expect(vault.set('big', 'a'.repeat(MAX_SECRET_VALUE_BYTES + 1))).rejects.toMatchObject(tooLarge);
    // 21 846 characters, but 65 538 bytes of UTF-8: the limit is on bytes.
    await expect(vault.set('big', '€'.repeat(21_846))).rejects.toMatchObject(tooLarge);
    await expect(vault.rotate('exact', `${exact}b`)).rejects.toMatchObject(tooLarge);
    await expect(vault.set('big', 'x'.repeat(10 * MAX_SECRET_VALUE_BYTES))).rejects.toMatchObject(tooLarge);

    const invalid = rejection('BASTION_ERR_INVALID_SECRET_VALUE', 400);
    await expect(vault.set('empty', '')).rejects.toMatchObject(invalid);
    await expect(vault.set('surrogate', 'half \ud83d of a pair')).rejects.toMatchObject(invalid);
    await expect(vault.rotate('exact', '\udc00')).rejects.toMatchObject(invalid);
    await expect(vault.set('not-string', 42 as unknown as string)).rejects.toMatchObject(invalid);
    expect((await vault.list()).map((secret) => secret.name)).toEqual(['exact', 'unicode']);
    expect((await vault.info('exact')).current_version).toBe(1);
  });

  it('validates rotation periods', async () => {
    const invalid = rejection('BASTION_ERR_INVALID_ROTATION_PERIOD', 400);
    for (const days of [0, -1, 1.5, 36_501, Number.NaN, Number.POSITIVE_INFINITY]) {
      await expect(vault.set('p', 'v', { rotationPeriodDays: days }), String(days)).rejects.toMatchObject(
        invalid,
      );
    }
    await vault.set('p', 'v', { rotationPeriodDays: 36_500 });
    await expect(vault.rotate('p', 'w', { rotationPeriodDays: 0 })).rejects.toMatchObject(invalid);
    expect((await vault.info('p')).current_version).toBe(1);
  });

  it('gives 20 concurrent rotations the versions 2..21, none lost or repeated', async () => {
    await vault.set('busy', 'v1');
    const values = Array.from(
      { length: 20 },
      (_, index) => `rotation-${index}-${randomBytes(6).toString('hex')}`,
    );
    const results = await Promise.all(values.map((value) => vault.rotate('busy', value)));
    const versions = results.map((result) => result.current_version).sort((a, b) => a - b);
    expect(versions).toEqual(Array.from({ length: 20 }, (_, index) => index + 2));
    expect((await vault.info('busy')).current_version).toBe(21);

    const rows = await database.db
      .selectFrom('secret_versions')
      .select('version')
      .where('name', '=', 'busy')
      .execute();
    expect(rows.map((row) => row.version).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 21 }, (_, index) => index + 1),
    );
    // Each rotation's value landed in the version that rotation was told about.
    for (const [index, result] of results.entries()) {
      expect((await vault.getVersion('busy', result.current_version)).value).toBe(values[index]);
    }
    const current = await vault.get('busy');
    expect(current.version).toBe(21);
    expect(values).toContain(current.value);
  });

  it('lets exactly one of 10 concurrent sets of a name win', async () => {
    const values = Array.from({ length: 10 }, (_, index) => `set-${index}`);
    const results = await Promise.allSettled(values.map((value) => vault.set('race', value)));
    const won = results.filter((result) => result.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const result of results) {
      if (result.status === 'rejected') {
        expect(result.reason).toMatchObject(rejection('BASTION_ERR_SECRET_EXISTS', 409));
      }
    }
    const read = await vault.get('race');
    expect(read.version).toBe(1);
    expect(values).toContain(read.value);
  });

  it('refuses a ciphertext moved to another secret or version, without recording a read', async () => {
    await vault.set('alpha', planted('alpha'));
    await vault.rotate('alpha', planted('alpha2'));
    await vault.set('beta', planted('beta'));
    const stored = async (name: string, version: number) =>
      (
        await database.db
          .selectFrom('secret_versions')
          .select('value')
          .where('name', '=', name)
          .where('version', '=', version)
          .executeTakeFirstOrThrow()
      ).value;
    const move = async (from: [string, number], to: [string, number]) =>
      database.db
        .updateTable('secret_versions')
        .set({ value: await stored(...from) })
        .where('name', '=', to[0])
        .where('version', '=', to[1])
        .execute();

    // Another secret's ciphertext, same version number.
    await move(['alpha', 1], ['beta', 1]);
    await expect(vault.get('beta')).rejects.toMatchObject(DECRYPT_FAILED);
    expect((await vault.info('beta')).last_read_at).toBeNull();
    // The same secret's other version.
    await move(['alpha', 2], ['alpha', 1]);
    await expect(vault.getVersion('alpha', 1)).rejects.toMatchObject(DECRYPT_FAILED);
    expect((await vault.info('alpha')).last_read_at).toBeNull();
    // An altered ciphertext.
    const original = await stored('alpha', 2);
    const flipped = `${original.slice(0, -2)}${original.endsWith('A') ? 'B' : 'A'}${original.slice(-1)}`;
    await database.db
      .updateTable('secret_versions')
      .set({ value: flipped })
      .where('name', '=', 'alpha')
      .where('version', '=', 2)
      .execute();
    await expect(vault.get('alpha')).rejects.toMatchObject(DECRYPT_FAILED);
  });

  it('never stores a plaintext value in the database', async () => {
    const values = [planted('one'), planted('two'), planted('three'), `${'ab'.repeat(10)}${planted('x')}`];
    await vault.set('one', values[0]!);
    await vault.rotate('one', values[1]!);
    await vault.set('two', values[2]!, { rotationPeriodDays: 1 });
    await vault.set('three', values[3]!);
    const versions = await database.db.selectFrom('secret_versions').selectAll().execute();
    expect(versions).toHaveLength(4);
    const secrets = await database.db.selectFrom('secrets').selectAll().execute();
    const dump = JSON.stringify([versions, secrets]);
    for (const value of values) expect(dump).not.toContain(value);
    for (const row of versions) {
      expect(row.value).toMatch(/^v1\.dk[0-9a-f]{16}\./);
      expect(keyIdOf(row.value)).toBe(keyring.active('field').id);
    }
  });

  it('keeps old versions readable after a field key rotation and seals new ones with the new key', async () => {
    const before = planted('before');
    await vault.set('rotating', before);
    const oldKey = keyring.active('field').id;
    const newKey = (await keyring.rotate('field')).id;
    const after = planted('after');
    await vault.rotate('rotating', after);
    expect((await vault.getVersion('rotating', 1)).value).toBe(before);
    expect((await vault.get('rotating')).value).toBe(after);
    const rows = await database.db
      .selectFrom('secret_versions')
      .select(['version', 'value'])
      .orderBy('version')
      .execute();
    expect(rows.map((row) => keyIdOf(row.value))).toEqual([oldKey, newKey]);
  });
});
