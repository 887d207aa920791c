/**
 * Stage (b): the same route behind Bastion's whole pipeline (request id, logging, metrics,
 * health, errors, load shedding...), configured as a developer would run it locally.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../../src/config/load-config.ts';
import { createApp } from '../../src/server/create-app.ts';
import { announceReady, exitOnSignal, failStartup, portOf, ROUTE_PATH } from './shared.ts';

async function main(): Promise<void> {
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
      },
    });
    const app = await createApp({
      config,
      // Logging stays on (it is part of the cost being measured) but goes nowhere, like stages c and d.
      logDestination: '/dev/null',
      routes: (instance: FastifyInstance) => {
        instance.get(ROUTE_PATH, { config: { auth: 'public' } }, async () => ({ hello: 'world' }));
      },
    });
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

main().catch(failStartup);
