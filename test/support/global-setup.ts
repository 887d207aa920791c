import pg from 'pg';
import { DATABASE_URL_TEST, TEST_SCHEMA_PREFIX } from './services.ts';

/** Drops every schema a test created (left from an earlier, interrupted run too). */
async function dropTestSchemas(): Promise<void> {
  const client = new pg.Client({ connectionString: DATABASE_URL_TEST, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
  } catch {
    return; // PostgreSQL is down: the suites that need it say so themselves.
  }
  try {
    const { rows } = await client.query<{ name: string }>(
      'select nspname as name from pg_namespace where nspname like $1',
      [`${TEST_SCHEMA_PREFIX}\\_%`],
    );
    for (const { name } of rows) await client.query(`drop schema if exists "${name}" cascade`);
  } finally {
    await client.end();
  }
}

export async function setup(): Promise<void> {
  await dropTestSchemas();
}

export async function teardown(): Promise<void> {
  await dropTestSchemas();
}
