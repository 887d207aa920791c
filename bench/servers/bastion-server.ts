/**
 * Starts Bastion's whole pipeline (request id, logging, metrics, health, errors, load shedding,
 * identity) around the bench route, configured as a developer would run it locally, for stages
 * (b) and (e).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { ALLOWED_ORIGIN, announceReady, exitOnSignal, portOf, ROUTE_PATH } from './shared.ts';

// Bastion is measured as users run it: the compiled build in dist/ (`npm run bench` builds it
// first), not the sources through tsx, whose transform adds work to every closure it creates.
const DIST = new URL('../../dist/', import.meta.url);
const { loadConfig } = (await import(
  new URL('config/load-config.js', DIST).href
)) as typeof import('../../src/config/load-config.ts');
const { createApp } = (await import(
  new URL('server/create-app.js', DIST).href
)) as typeof import('../../src/server/create-app.ts');

/** Options of {@link runBastionServer}. */
export interface BastionServerOptions {
  /** The bench route's `config.auth`. */
  auth: string;
  /** Extra environment (e.g. the platform admin). */
  env?: Record<string, string>;
  /** Runs once the app is ready, before READY is announced. */
  beforeReady?: (app: FastifyInstance) => Promise<void>;
}

/** Builds, listens and announces READY; cleans its temp data directory on exit. */
export async function runBastionServer(options: BastionServerOptions): Promise<void> {
  // A fresh data directory per process, so no state (keys, SQLite rows) leaks between rounds.
  const dataDir = await mkdtemp(join(tmpdir(), 'bastion-bench-'));
  const removeDataDir = (): Promise<void> => rm(dataDir, { recursive: true, force: true });
  try {
    // NODE_ENV=production would demand real secrets; development with an explicit master key and
    // JSON logs is the closest configuration that starts with nothing but a temp directory.
    const config = await loadConfig({
      env: {
        NODE_ENV: 'development',
        DATABASE_URL: `sqlite:${join(dataDir, 'bench.db')}`,
        LOG_LEVEL: 'info',
        BASTION_MASTER_KEY: randomBytes(32).toString('base64'),
        BASTION_LOG_FORMAT: 'json',
        BASTION_DATA_DIR: dataDir,
        // Rate limiting stays on (counting is part of the cost being measured) with limits the
        // load generator, one address sending tens of thousands of requests a second, never reaches.
        BASTION_RATE_LIMIT_IP: '1000000000',
        // The load generator sends this Origin, as it does to the peers, so CORS does real work.
        CORS_ORIGINS: ALLOWED_ORIGIN,
        BASTION_RATE_LIMIT_PRINCIPAL: '1000000000',
        ...options.env,
      },
    });
    const app = await createApp({
      config,
      // Logging stays on (it is part of the cost being measured) but goes nowhere, like stages c and d.
      logDestination: '/dev/null',
      routes: (instance: FastifyInstance) => {
        instance.get(ROUTE_PATH, { config: { auth: options.auth } }, async () => ({ hello: 'world' }));
      },
    });
    await options.beforeReady?.(app);
    await app.listen({ host: '127.0.0.1', port: 0 });
    exitOnSignal(async () => {
      await app.close();
      await removeDataDir();
    });
    announceReady(portOf(app.server.address()));
  } catch (error) {
    await removeDataDir();
    throw error;
  }
}
