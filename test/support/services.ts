import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';

/** PostgreSQL used by tests (DESIGN.md: `DATABASE_URL_TEST`). */
export const DATABASE_URL_TEST = process.env.DATABASE_URL_TEST ?? 'postgres://postgres@127.0.0.1:5432/test';
/** Redis used by tests (DESIGN.md: `REDIS_URL_TEST`). */
export const REDIS_URL_TEST = process.env.REDIS_URL_TEST ?? 'redis://127.0.0.1:6379';
/** Prefix of every PostgreSQL schema a test creates; the global teardown drops them all. */
export const TEST_SCHEMA_PREFIX = 'bastion_test';
/** Chromium used by console tests. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

const required = process.env.BASTION_REQUIRE_SERVICES === '1';
const cache = new Map<string, Promise<boolean>>();

async function probe(name: string, check: () => Promise<void>): Promise<boolean> {
  try {
    await check();
    return true;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    if (required) {
      throw new Error(`${name} is required (BASTION_REQUIRE_SERVICES=1) but unreachable: ${reason}`);
    }
    console.warn(`[skip] ${name} unreachable (${reason}); its tests are skipped`);
    return false;
  }
}

function once(name: string, check: () => Promise<void>): Promise<boolean> {
  let result = cache.get(name);
  if (!result) {
    result = probe(name, check);
    cache.set(name, result);
  }
  return result;
}

/** True when Redis answers; false (with a skip line) when not, or throws in CI. */
export function redisAvailable(): Promise<boolean> {
  return once(`Redis at ${REDIS_URL_TEST}`, async () => {
    const client = new Redis(REDIS_URL_TEST, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      connectTimeout: 2000,
    });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.ping();
    } finally {
      client.disconnect();
    }
  });
}

/** True when PostgreSQL answers; false (with a skip line) when not, or throws in CI. */
export function postgresAvailable(): Promise<boolean> {
  return once(`PostgreSQL at ${DATABASE_URL_TEST}`, async () => {
    const client = new pg.Client({ connectionString: DATABASE_URL_TEST, connectionTimeoutMillis: 2000 });
    try {
      await client.connect();
      await client.query('select 1');
    } finally {
      await client.end().catch(() => {});
    }
  });
}

/** A short random name for isolating one test's keys, schema or files. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}
