import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../src/core/clock.ts';
import { FieldCipher, keyIdOf } from '../src/data-protection/field-cipher.ts';
import { Keyring } from '../src/data-protection/keyring.ts';
import { ReencryptionJob } from '../src/data-protection/reencryption.ts';
import {
  captureLogger,
  createTestDatabase,
  insertSecretRows,
  readSecretRows,
  secretRows,
  type TestDatabase,
} from './support/reencryption-fixtures.ts';
import { postgresAvailable } from './support/services.ts';

const root = path.resolve(import.meta.dirname, '..');
const child = path.join(root, 'test/support/reencrypt-child.ts');
const pgUp = await postgresAvailable();

/** Starts the slow job in a child process, kills it with SIGKILL after its first batch. */
function runAndKill(env: Record<string, string>): Promise<{ signal: NodeJS.Signals | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const worker = spawn(process.execPath, ['--import', 'tsx', child], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    worker.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.includes('"progress"')) worker.kill('SIGKILL');
    });
    worker.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    worker.on('error', reject);
    worker.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve({ signal, stdout });
      else reject(new Error(`the child ended by itself (code ${code}): ${stdout}\n${stderr}`));
    });
  });
}

describe.each([
  { kind: 'sqlite' as const, skip: false },
  { kind: 'postgres' as const, skip: !pgUp },
])('re-encryption killed mid-way on $kind', ({ kind, skip }) => {
  let testDb: TestDatabase | null = null;
  afterEach(async () => {
    await testDb?.close();
    testDb = null;
  });

  it.skipIf(skip)(
    'resumes by running again: every row ends under the new key, none corrupted',
    async () => {
      testDb = await createTestDatabase(kind);
      const db = testDb.database.db;
      const masterKey = randomBytes(32);
      const keyring = await Keyring.open({ db, masterKey, clock: systemClock });
      const cipher = new FieldCipher(keyring);
      const rows = secretRows(30);
      await insertSecretRows(db, cipher, rows);
      const old = keyring.active('field').id;
      const next = (await keyring.rotate('field')).id;

      const { signal, stdout } = await runAndKill({
        BASTION_TEST_DATABASE_URL: testDb.location.url,
        BASTION_TEST_SCHEMA: testDb.location.schema ?? '',
        BASTION_TEST_MASTER_KEY: masterKey.toString('base64'),
      });
      expect(signal).toBe('SIGKILL');
      expect(stdout).not.toContain('"result"');

      const halfway = await readSecretRows(db, cipher);
      const moved = halfway.filter((row) => keyIdOf(row.stored) === next).length;
      expect(moved).toBeGreaterThan(0);
      expect(moved).toBeLessThan(rows.length);
      expect(halfway.map(({ name, version, value }) => ({ name, version, value }))).toEqual(rows);
      expect(keyring.list().find((key) => key.id === old)?.state).toBe('decrypt-only');

      const { logger } = captureLogger();
      const job = new ReencryptionJob({ db, cipher, keyring, logger, maxRowsPerSecond: 10_000 });
      expect((await job.remaining()).total).toBe(rows.length - moved);
      const result = await job.runOnce();
      expect(result).toMatchObject({ reencrypted: rows.length - moved, failed: 0, retired: [old] });
      expect(result.remaining.total).toBe(0);

      const done = await readSecretRows(db, cipher);
      expect(done.map(({ name, version, value }) => ({ name, version, value }))).toEqual(rows);
      for (const row of done) expect(keyIdOf(row.stored)).toBe(next);
      await keyring.close();
    },
    30_000,
  );
});
