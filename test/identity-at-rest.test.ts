import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import * as OTPAuth from 'otpauth';
import { describe, expect, it } from 'vitest';
import { encryptedColumn, SIGNING_PRIVATE_KEY } from '../src/data-protection/encrypted-columns.ts';
import { ADMIN, bearer, call, createUser, login, startIdentityApp } from './support/identity.ts';
import { DATABASE_URL_TEST, postgresAvailable } from './support/services.ts';

const pgUp = await postgresAvailable();
const run = promisify(execFile);

async function sqliteBytes(dataDir: string): Promise<string> {
  const files = (await readdir(dataDir)).filter((name) => name.includes('.db'));
  const contents = await Promise.all(files.map((name) => readFile(path.join(dataDir, name))));
  return Buffer.concat(contents).toString('latin1');
}

async function postgresDump(app: FastifyInstance): Promise<string> {
  const result = await sql<{ schema: string }>`select current_schema() as schema`.execute(
    app.bastion.database.db,
  );
  const { stdout } = await run(
    'pg_dump',
    ['--no-owner', `--schema=${result.rows[0]!.schema}`, DATABASE_URL_TEST],
    {
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  expect(stdout).toContain('users');
  return stdout;
}

/**
 * Identity's sensitive data never rests in clear: e-mail addresses, passwords, TOTP secrets,
 * backup codes, refresh tokens, API key secrets, integration credentials and the signing key's
 * private half, in the database files (SQLite with its WAL, a pg_dump) and in the logs, also
 * after the field key is rotated and every row re-encrypted (and everything still works).
 */
describe.each([
  { engine: 'SQLite', database: 'sqlite' as const, skip: false },
  { engine: 'PostgreSQL', database: 'postgres' as const, skip: !pgUp },
])('identity data at rest on $engine', ({ database, skip }) => {
  it.skipIf(skip)(
    'keeps every credential and address out of storage and logs',
    { timeout: 60_000 },
    async () => {
      const t = await startIdentityApp({ database });
      try {
        const { app } = t;
        const planted = {
          email: `rest.${randomBytes(4).toString('hex')}@example.com`,
          password: `Quartz-${randomBytes(6).toString('base64url')}-Meadow`,
          credential: `cred-${randomBytes(12).toString('base64url')}`,
        };
        const admin = await login(app, ADMIN.email, ADMIN.password);
        await createUser(app, admin.access_token, planted.email, planted.password);
        const user = await login(app, planted.email, planted.password);

        const setup = await call(app, user.access_token, 'POST', '/auth/mfa/totp/setup', {
          password: planted.password,
        });
        expect(setup.statusCode, setup.body).toBe(200);
        const secret = (setup.json() as { secret: string }).secret;
        const totp = new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(secret) });
        const enable = await call(app, user.access_token, 'POST', '/auth/mfa/totp/enable', {
          code: totp.generate({ timestamp: Date.now() }),
        });
        expect(enable.statusCode, enable.body).toBe(200);
        const backupCodes = (enable.json() as { backup_codes: string[] }).backup_codes;

        const org = await call(app, admin.access_token, 'POST', '/api/v1/organizations', { name: 'Rest' });
        expect(org.statusCode, org.body).toBe(201);
        const orgId = (org.json() as { id: string }).id;
        const integration = await call(
          app,
          admin.access_token,
          'POST',
          `/api/v1/organizations/${orgId}/integrations`,
          {
            name: 'Hook',
            type: 'webhook',
            url: 'https://hooks.example.com/in',
            credentials: { token: planted.credential },
          },
        );
        expect(integration.statusCode, integration.body).toBe(201);
        const key = await call(app, admin.access_token, 'POST', `/api/v1/organizations/${orgId}/api-keys`, {
          name: 'ci',
          permissions: ['workflows:read'],
        });
        expect(key.statusCode, key.body).toBe(201);
        const apiKey = (key.json() as { token: string }).token;

        // Rotate the field key and re-encrypt every row; then everything must still work.
        await app.bastion.keyring.rotate('field');
        await app.bastion.reencryption.runOnce();
        expect((await app.bastion.reencryption.remaining()).total).toBe(0);
        const again = await app.inject({
          method: 'POST',
          url: '/auth/login',
          payload: { email: planted.email.toUpperCase(), password: planted.password },
        });
        expect(again.statusCode).toBe(200);
        const challenge = again.json() as { mfa_token: string };
        const verified = await call(app, null, 'POST', '/auth/mfa/verify', {
          mfa_token: challenge.mfa_token,
          code: backupCodes[0],
        });
        expect(verified.statusCode, verified.body).toBe(200);
        expect((await app.inject({ url: '/auth/me', headers: bearer(admin.access_token) })).statusCode).toBe(
          200,
        );
        expect((await app.inject({ url: '/auth/me', headers: { 'x-api-key': apiKey } })).statusCode).toBe(
          200,
        );

        const signing = await app.bastion.database.db
          .selectFrom('signing_keys')
          .selectAll()
          .where('id', '=', app.bastion.identity.signingKeys.active.id)
          .executeTakeFirstOrThrow();
        const privateJwk = await encryptedColumn(app.bastion.cipher, SIGNING_PRIVATE_KEY).open(
          signing,
          signing.private_jwk,
        );
        const privateD = (JSON.parse(privateJwk) as { d: string }).d;
        expect(privateD.length).toBeGreaterThan(40);
        const stored = database === 'sqlite' ? await sqliteBytes(t.dataDir) : await postgresDump(app);
        const forbidden: Record<string, string> = {
          email: planted.email,
          emailLower: planted.email.toLowerCase(),
          password: planted.password,
          credential: planted.credential,
          totpSecret: secret,
          apiKey,
          apiKeySecret: apiKey.slice('bst_'.length + 17),
          refreshToken: user.refresh_token,
          accessToken: user.access_token,
          signingKey: privateD,
          ...Object.fromEntries(backupCodes.map((code, index) => [`backup${index}`, code])),
          ...Object.fromEntries(
            backupCodes.map((code, index) => [`backupRaw${index}`, code.replace('-', '')]),
          ),
        };
        const inDatabase = Object.entries(forbidden).filter(([, value]) => stored.includes(value));
        const inLogs = Object.entries(forbidden).filter(([, value]) => t.logs.text.includes(value));
        expect(inDatabase.map(([name]) => name)).toEqual([]);
        expect(inLogs.map(([name]) => name)).toEqual([]);
      } finally {
        await t.close();
      }
    },
  );
});
