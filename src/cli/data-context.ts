import type { Logger } from 'pino';
import { ConfigError } from '../config/errors.ts';
import { loadConfig } from '../config/load-config.ts';
import { resolveMasterKey } from '../config/master-key.ts';
import { productionProblems } from '../config/production-guards.ts';
import type { BastionConfig } from '../config/schema.ts';
import { systemClock } from '../core/clock.ts';
import { FieldCipher } from '../data-protection/field-cipher.ts';
import { Keyring } from '../data-protection/keyring.ts';
import { createLogger } from '../observability/logger.ts';
import { StartupError } from '../server/startup-error.ts';
import { type Database, openDatabase } from '../storage/database.ts';
import { pendingMigrations } from '../storage/migrator.ts';

/** What a data command (keys, secrets) works with: storage and the keyring, no HTTP server. */
export interface DataContext {
  config: BastionConfig;
  logger: Logger;
  database: Database;
  masterKey: Buffer;
  keyring: Keyring;
  cipher: FieldCipher;
}

/**
 * Opens the configured database and keyring for a CLI command, runs `work`, and closes
 * everything. Refuses a database with pending migrations (run `bastion migrate up` first).
 */
export async function withDataContext<T>(
  options: { configFile?: string },
  work: (context: DataContext) => Promise<T>,
): Promise<T> {
  const config = await loadConfig({ file: options.configFile });
  const problems = productionProblems(config);
  if (problems.length > 0) throw new ConfigError(problems, 'Refusing to run in production');
  // CLI output is for people; the commands' own log lines go to stderr so stdout stays clean.
  const logger = createLogger(config, 2);
  const database = openDatabase({ url: config.database.url, poolMax: 2 });
  let keyring: Keyring | null = null;
  try {
    const pending = await pendingMigrations(database);
    if (pending.length > 0) {
      throw new StartupError(
        `The database has pending migrations (${pending.join(', ')}); run \`bastion migrate up\` first.`,
      );
    }
    const masterKey = await resolveMasterKey(config, (message) => logger.warn(message));
    keyring = await Keyring.open({ db: database.db, masterKey, clock: systemClock });
    return await work({ config, logger, database, masterKey, keyring, cipher: new FieldCipher(keyring) });
  } finally {
    await keyring?.close();
    await database.close();
  }
}
