import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../src/core/clock.ts';
import { FieldCipher, keyIdOf } from '../src/data-protection/field-cipher.ts';
import { Keyring } from '../src/data-protection/keyring.ts';
import { openDatabase } from '../src/storage/database.ts';
import { createPostgresSchema } from './support/app.ts';
import { runCli } from './support/cli.ts';
import { insertSecretRows, readSecretRows, secretRows } from './support/reencryption-fixtures.ts';
import { DATABASE_URL_TEST, postgresAvailable } from './support/services.ts';

const pgUp = await postgresAvailable();

/** Key lines of `keys status`: id, purpose, state. */
function keyLines(stdout: string): Array<{ id: string; purpose: string; state: string }> {
  return stdout
    .split('\n')
    .map((line) => /^(dk[0-9a-f]+)\s+(\S+)\s+(\S+)\s/.exec(line))
    .filter((match) => match !== null)
    .map((match) => ({ id: match[1]!, purpose: match[2]!, state: match[3]! }));
}

function totalOf(stdout: string): number {
  const match = /^\s+total\s+(\d+)$/m.exec(stdout);
  if (!match) throw new Error(`no total in: ${stdout}`);
  return Number(match[1]);
}

let dataDir: string;
beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'bastion-cli-keys-'));
});
afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

it('prints --help for keys and each of its commands', async () => {
  const commands = [
    ['keys'],
    ['keys', 'status'],
    ['keys', 'rotate'],
    ['keys', 'reencrypt'],
    ['keys', 'rewrap'],
  ];
  const results = await Promise.all(commands.map((args) => runCli([...args, '--help'])));
  results.forEach((result, index) => {
    const name = commands[index]!.join(' ');
    expect(result.code, name).toBe(0);
    expect(result.stdout, name).toMatch(/^Usage: bastion keys/);
    if (index > 0) expect(result.stdout, name).toContain('-c, --config <file>');
  });
  expect(results[2]!.stdout).toContain('--no-reencrypt');
  expect(results[4]!.stdout).toContain('stdin');
}, 120_000);

it('refuses to rotate blind-index and pseudonym keys, explaining why', async () => {
  const blind = await runCli(['keys', 'rotate', '--purpose', 'blind-index'], { BASTION_DATA_DIR: dataDir });
  expect(blind.code).toBe(1);
  expect(blind.stderr).toContain('Refusing to rotate the blind-index key');
  expect(blind.stderr).toContain('re-indexed');
  expect(blind.stderr).toContain('Only field keys rotate without downtime');
  const pseudonym = await runCli(['keys', 'rotate', '--purpose', 'pseudonym'], { BASTION_DATA_DIR: dataDir });
  expect(pseudonym.code).toBe(1);
  expect(pseudonym.stderr).toContain('Refusing to rotate the pseudonym key');
  const unknown = await runCli(['keys', 'rotate', '--purpose', 'email'], { BASTION_DATA_DIR: dataDir });
  expect(unknown.code).toBe(1);
  expect(unknown.stderr).toContain('--purpose must be one of field, blind-index, pseudonym');
}, 120_000);

describe.each([
  { kind: 'sqlite' as const, skip: false },
  { kind: 'postgres' as const, skip: !pgUp },
])('bastion keys on $kind', ({ kind, skip }) => {
  /** A fresh, migrated database and the environment that points the CLI at it. */
  async function setup(name: string) {
    const masterKey = randomBytes(32);
    let url: string;
    let open: () => ReturnType<typeof openDatabase>;
    if (kind === 'sqlite') {
      url = `sqlite:${path.join(dataDir, `${name}.db`)}`;
      open = () => openDatabase({ url });
    } else {
      const { schema } = await createPostgresSchema();
      url = `${DATABASE_URL_TEST}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
      open = () => openDatabase({ url: DATABASE_URL_TEST, schema });
    }
    const env = {
      BASTION_DATA_DIR: dataDir,
      BASTION_LOG_FORMAT: 'json',
      DATABASE_URL: url,
      BASTION_MASTER_KEY: masterKey.toString('base64'),
    };
    const migrated = await runCli(['migrate', 'up'], env);
    expect(migrated.code, migrated.stderr).toBe(0);
    return { env, masterKey, open };
  }

  /** Writes secret rows under the current active field key, in this process. */
  async function seed(open: () => ReturnType<typeof openDatabase>, masterKey: Buffer, count: number) {
    const database = open();
    try {
      const keyring = await Keyring.open({ db: database.db, masterKey, clock: systemClock });
      const rows = secretRows(count);
      await insertSecretRows(database.db, new FieldCipher(keyring), rows);
      return rows;
    } finally {
      await database.close();
    }
  }

  it.skipIf(skip)(
    'status lists the three initial keys and no rows remaining',
    async () => {
      const { env } = await setup('status');
      const status = await runCli(['keys', 'status'], env);
      expect(status.stderr).toBe('');
      expect(status.code).toBe(0);
      expect(status.stdout).toMatch(/^ID\s+PURPOSE\s+STATE\s+CREATED\s+STATE CHANGED$/m);
      const keys = keyLines(status.stdout);
      expect(keys.map((key) => `${key.purpose}:${key.state}`).sort()).toEqual([
        'blind-index:active',
        'field:active',
        'pseudonym:active',
      ]);
      expect(status.stdout).toMatch(/^\s+secret_versions\.value\s+0$/m);
      expect(totalOf(status.stdout)).toBe(0);
    },
    120_000,
  );

  it.skipIf(skip)(
    'rotate makes a new active field key; reencrypt moves the rows and retires the old key',
    async () => {
      const { env, masterKey, open } = await setup('rotate');
      const initial = await runCli(['keys', 'status'], env);
      expect(initial.code, initial.stderr).toBe(0);
      const first = keyLines(initial.stdout);
      const old = first.find((key) => key.purpose === 'field')!.id;
      const rows = await seed(open, masterKey, 12);

      const rotated = await runCli(['keys', 'rotate', '--no-reencrypt'], env);
      expect(rotated.code, rotated.stderr).toBe(0);
      const next = /Rotated the field key: (dk[0-9a-f]+) is active; (dk[0-9a-f]+) is now decrypt-only/.exec(
        rotated.stdout,
      );
      expect(next?.[2]).toBe(old);
      const active = next![1]!;
      expect(rotated.stdout).toContain('12 row(s) are under decrypt-only keys');

      const middle = await runCli(['keys', 'status'], env);
      const states = Object.fromEntries(keyLines(middle.stdout).map((key) => [key.id, key.state]));
      expect(states[old]).toBe('decrypt-only');
      expect(states[active]).toBe('active');
      expect(keyLines(middle.stdout)).toHaveLength(4);
      expect(totalOf(middle.stdout)).toBe(12);

      const reencrypted = await runCli(['keys', 'reencrypt'], env);
      expect(reencrypted.code, reencrypted.stderr).toBe(0);
      expect(reencrypted.stdout).toContain('secret_versions.value: 12 re-encrypted, 0 failed, 0 remaining');
      expect(reencrypted.stdout).toContain('Done: 12 re-encrypted, 0 failed, 0 remaining.');
      expect(reencrypted.stdout).toContain(`Retired ${old}`);
      for (const row of rows) expect(reencrypted.stdout + reencrypted.stderr).not.toContain(row.value);

      const after = await runCli(['keys', 'status'], env);
      expect(Object.fromEntries(keyLines(after.stdout).map((key) => [key.id, key.state]))[old]).toBe(
        'retired',
      );
      expect(totalOf(after.stdout)).toBe(0);

      // Rotation with the default foreground re-encryption.
      const again = await runCli(['keys', 'rotate'], env);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toContain('Done: 12 re-encrypted');
      expect(again.stdout).toContain(`Retired ${active}`);
      const newest = /Rotated the field key: (dk[0-9a-f]+) is active/.exec(again.stdout)![1]!;

      const database = open();
      try {
        const keyring = await Keyring.open({ db: database.db, masterKey, clock: systemClock });
        const stored = await readSecretRows(database.db, new FieldCipher(keyring));
        expect(stored.map(({ name, version, value }) => ({ name, version, value }))).toEqual(rows);
        for (const row of stored) expect(keyIdOf(row.stored)).toBe(newest);
      } finally {
        await database.close();
      }
    },
    120_000,
  );

  it.skipIf(skip)(
    'rewrap changes the master key; the old key then fails clearly; running it twice is harmless',
    async () => {
      const { env, masterKey, open } = await setup('rewrap');
      const rows = await seed(open, masterKey, 5);
      const oldKey = masterKey.toString('base64');
      const newKey = randomBytes(32).toString('base64');
      const withNew = { ...env, BASTION_MASTER_KEY: newKey };

      const before = await runCli(['keys', 'status'], withNew);
      expect(before.code, before.stderr).toBe(1);
      expect(before.stderr).toContain('cannot be unwrapped');
      expect(before.stderr).toContain('bastion keys rewrap');

      const empty = await runCli(['keys', 'rewrap'], withNew, '');
      expect(empty.code, empty.stderr).toBe(1);
      expect(empty.stderr).toContain('The old master key read from stdin is not base64');

      const rewrapped = await runCli(['keys', 'rewrap'], withNew, `${oldKey}\n`);
      expect(rewrapped.code, rewrapped.stderr).toBe(0);
      expect(rewrapped.stdout).toContain('Re-wrapped 3 data key(s) under the configured master key.');
      expect(rewrapped.stdout + rewrapped.stderr).not.toContain(oldKey);
      expect(rewrapped.stdout + rewrapped.stderr).not.toContain(newKey);

      const status = await runCli(['keys', 'status'], withNew);
      expect(status.code, status.stderr).toBe(0);
      expect(keyLines(status.stdout)).toHaveLength(3);
      const stale = await runCli(['keys', 'status'], env);
      expect(stale.code, stale.stderr).toBe(1);
      expect(stale.stderr).toMatch(
        /Data key dk[0-9a-f]+ cannot be unwrapped: BASTION_MASTER_KEY is not the key/,
      );

      const twice = await runCli(['keys', 'rewrap'], withNew, oldKey);
      expect(twice.code, twice.stderr).toBe(0);
      expect(twice.stdout).toContain('nothing to do');

      const database = open();
      try {
        const keyring = await Keyring.open({
          db: database.db,
          masterKey: Buffer.from(newKey, 'base64'),
          clock: systemClock,
        });
        const stored = await readSecretRows(database.db, new FieldCipher(keyring));
        expect(stored.map(({ name, version, value }) => ({ name, version, value }))).toEqual(rows);
      } finally {
        await database.close();
      }
    },
    120_000,
  );
});
