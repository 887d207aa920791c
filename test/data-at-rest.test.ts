import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { startTestApp } from './support/app.ts';
import { DATABASE_URL_TEST, postgresAvailable } from './support/services.ts';

const pgUp = await postgresAvailable();
const run = promisify(execFile);

/** Every byte the SQLite database left on disk: the file, its WAL and shared memory. */
async function sqliteBytes(dataDir: string): Promise<string> {
  const files = (await readdir(dataDir)).filter((name) => name.includes('.db'));
  expect(files.length).toBeGreaterThan(0);
  const contents = await Promise.all(files.map((name) => readFile(path.join(dataDir, name))));
  return Buffer.concat(contents).toString('latin1');
}

/** A full plain-text dump of the test's PostgreSQL schema. */
async function postgresDump(schema: string): Promise<string> {
  const { stdout } = await run('pg_dump', ['--no-owner', `--schema=${schema}`, DATABASE_URL_TEST], {
    maxBuffer: 64 * 1024 * 1024,
  });
  expect(stdout).toContain('secret_versions');
  return stdout;
}

describe.each([
  { engine: 'SQLite', database: 'sqlite' as const, skip: false },
  { engine: 'PostgreSQL', database: 'postgres' as const, skip: !pgUp },
])('data at rest on $engine', ({ database, skip }) => {
  it.skipIf(skip)(
    'holds no planted secret or personal data in plain text, in the database or the logs',
    async () => {
      const planted = {
        webhookSecret: `whsec_${randomBytes(16).toString('hex')}`,
        apiPassword: `pw-${randomBytes(12).toString('base64url')}`,
        rotatedPassword: `pw2-${randomBytes(12).toString('base64url')}`,
        email: `planted.${randomBytes(4).toString('hex')}@example.com`,
        card: '4111 1111 1111 1111',
        phone: `+1555${String(randomBytes(3).readUIntBE(0, 3)).padStart(7, '0')}`,
      };
      const t = await startTestApp({
        database,
        env: { BASTION_MASK_FIELDS: 'phone' },
        routes: (app) => {
          // Stands in for the reference API: a customer record is logged and its credentials vaulted.
          app.post('/customers', { config: { auth: 'public' } }, async (request) => {
            const body = request.body as { email: string; card: string; phone: string; credentials: string };
            request.log.info({ customer: body }, 'customer received');
            await app.bastion.vault.set('customers/c1/credentials', body.credentials);
            return { ok: true };
          });
        },
      });
      const schema = database === 'postgres' ? await schemaOf(t.app) : null;
      try {
        const { app } = t;
        const response = await app.inject({
          method: 'POST',
          url: '/customers',
          payload: {
            email: planted.email,
            card: planted.card,
            phone: planted.phone,
            credentials: planted.apiPassword,
          },
        });
        expect(response.statusCode).toBe(200);
        await app.bastion.vault.set('integrations/webhook', planted.webhookSecret, {
          rotationPeriodDays: 30,
        });
        await app.bastion.vault.rotate('customers/c1/credentials', planted.rotatedPassword);
        // Rotate the data key and move every row to it, as an operator would.
        const rotated = await app.bastion.keyring.rotate('field');
        const result = await app.bastion.reencryption.runOnce();
        expect(result).toBeDefined();
        expect((await app.bastion.reencryption.remaining()).total).toBe(0);
        // Everything still reads back.
        expect((await app.bastion.vault.get('integrations/webhook')).value).toBe(planted.webhookSecret);
        expect((await app.bastion.vault.get('customers/c1/credentials')).value).toBe(planted.rotatedPassword);
        const material = [...app.bastion.keyring.list()].map(
          (info) => app.bastion.keyring.cached(info.id)!.key,
        );
        expect(material.length).toBeGreaterThanOrEqual(4);
        expect(app.bastion.keyring.active('field').id).toBe(rotated.id);

        const stored =
          database === 'sqlite' ? await sqliteBytes(t.dataDir) : await postgresDump(schema as string);
        const logs = t.logs.text;
        expect(logs).toContain('customer received');

        const forbidden: Record<string, string> = {
          ...planted,
          masterKey: app.bastion.masterKey.toString('base64'),
          masterKeyHex: app.bastion.masterKey.toString('hex'),
          ...Object.fromEntries(
            material.flatMap((key, i) => [
              [`key${i}`, key.toString('base64')],
              [`hex${i}`, key.toString('hex')],
            ]),
          ),
        };
        const inDatabase = Object.entries(forbidden).filter(([, value]) => stored.includes(value));
        const inLogs = Object.entries(forbidden).filter(([, value]) => logs.includes(value));
        expect(inDatabase.map(([name]) => name)).toEqual([]);
        expect(inLogs.map(([name]) => name)).toEqual([]);
        // Masked hints are there instead.
        expect(logs).toContain('p***@example.com');
        expect(logs).toContain('**** **** **** 1111');
      } finally {
        await t.close();
      }
    },
  );
});

async function schemaOf(app: FastifyInstance): Promise<string> {
  const result = await sql<{ schema: string }>`select current_schema() as schema`.execute(
    app.bastion.database.db,
  );
  return result.rows[0]!.schema;
}
