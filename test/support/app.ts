import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import pg from 'pg';
import { loadConfig } from '../../src/config/load-config.ts';
import type { BastionConfig } from '../../src/config/schema.ts';
import type { Clock } from '../../src/core/clock.ts';
import type { Authenticator } from '../../src/core/principal.ts';
import { createApp } from '../../src/server/create-app.ts';
import { DATABASE_URL_TEST, TEST_SCHEMA_PREFIX, uniqueName } from './services.ts';

/** Collects every log line a test app writes, parsed and raw. */
export class LogCapture {
  readonly raw: string[] = [];

  write(chunk: string): boolean {
    for (const line of chunk.split('\n')) if (line.trim()) this.raw.push(line);
    return true;
  }

  /** Parsed JSON lines. */
  get lines(): Array<Record<string, unknown>> {
    return this.raw.map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  /** Everything written, as one string (for grepping planted secrets). */
  get text(): string {
    return this.raw.join('\n');
  }
}

/**
 * A PostgreSQL schema of its own for one test. `drop()` is deliberately left to the end of the
 * whole run (test/support/global-setup.ts): Kysely's migrator lists the tables of every schema in
 * the database, and a schema dropped by a parallel test file in the middle of that listing makes
 * it fail.
 */
export async function createPostgresSchema(): Promise<{ schema: string; drop(): Promise<void> }> {
  const schema = uniqueName(TEST_SCHEMA_PREFIX);
  const client = new pg.Client({ connectionString: DATABASE_URL_TEST });
  await client.connect();
  try {
    await client.query(`create schema ${schema}`);
  } finally {
    await client.end();
  }
  return { schema, drop: async () => {} };
}

/** Options for `startTestApp`. */
export interface TestAppOptions {
  /** Environment variables on top of the test defaults (JSON logs, temp SQLite, info level). */
  env?: Record<string, string | undefined>;
  /** 'sqlite' (default, a temp file) or 'postgres' (a fresh schema in DATABASE_URL_TEST). */
  database?: 'sqlite' | 'postgres';
  authenticate?: Authenticator<FastifyRequest>;
  routes?: (app: FastifyInstance) => void | Promise<void>;
  clock?: Clock;
  migrate?: boolean;
  /** Adjusts the loaded config before the app is built (for settings no env variable sets). */
  configure?: (config: BastionConfig) => void;
}

/** A running test app with its captured logs; `close()` removes everything it made. */
export interface TestApp {
  app: FastifyInstance;
  config: BastionConfig;
  logs: LogCapture;
  dataDir: string;
  close(): Promise<void>;
}

/** Builds a Bastion app for a test (in-process; use `app.inject` or `app.listen`). */
export async function startTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'bastion-test-'));
  const postgres = options.database === 'postgres' ? await createPostgresSchema() : null;
  const logs = new LogCapture();
  const config = await loadConfig({
    file: null,
    env: {
      NODE_ENV: 'test',
      BASTION_DATA_DIR: dataDir,
      BASTION_LOG_FORMAT: 'json',
      LOG_LEVEL: 'info',
      ...(postgres ? { DATABASE_URL: DATABASE_URL_TEST } : {}),
      ...options.env,
    },
  });
  let app: FastifyInstance;
  try {
    // Test files share a busy machine: a long pause of this process (module loading, the test
    // runner) is not overload. Tests of load shedding set their own threshold, which keeps it on.
    if (options.env?.BASTION_MAX_EVENT_LOOP_DELAY_MS === undefined) config.loadShedding.enabled = false;
    // Tests send many requests from one address; tests of rate limiting set a limit, which keeps it on.
    if (options.env?.BASTION_RATE_LIMIT_IP === undefined) config.protection.rateLimit.enabled = false;
    // Likewise automatic bans: suites that fail logins on purpose would ban their own address.
    // Tests of threat scoring turn it back on in `configure`.
    config.protection.threat.enabled = false;
    options.configure?.(config);
    app = await createApp({
      config,
      logDestination: logs,
      authenticate: options.authenticate,
      routes: options.routes,
      clock: options.clock,
      migrate: options.migrate,
      databaseSchema: postgres?.schema,
    });
  } catch (error) {
    await postgres?.drop();
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
  return {
    app,
    config,
    logs,
    dataDir,
    async close() {
      await app.close();
      await postgres?.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
