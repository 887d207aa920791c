import type { Command } from 'commander';
import { ConfigError } from '../../config/errors.ts';
import { loadConfig } from '../../config/load-config.ts';
import { decodeMasterKey, resolveMasterKey } from '../../config/master-key.ts';
import { productionProblems } from '../../config/production-guards.ts';
import type { BastionConfig } from '../../config/schema.ts';
import { systemClock } from '../../core/clock.ts';
import {
  type DataKeyInfo,
  KEY_PURPOSES,
  KEYRING_CHANNEL,
  type KeyPurpose,
  rewrapDataKeys,
} from '../../data-protection/keyring.ts';
import { ReencryptionJob, type ReencryptionResult } from '../../data-protection/reencryption.ts';
import { SigningKeys } from '../../identity/signing-keys.ts';
import { StartupError } from '../../server/startup-error.ts';
import { openDatabase } from '../../storage/database.ts';
import { pendingMigrations } from '../../storage/migrator.ts';
import { createSharedState } from '../../storage/shared-state.ts';
import { type DataContext, withDataContext } from '../data-context.ts';

const CONFIG_FLAG = '-c, --config <file>';
const CONFIG_HELP = 'YAML or JSON config file (overrides BASTION_CONFIG)';

// Why only field keys rotate: the other purposes produce values that are compared, not decrypted.
const ROTATION_REFUSALS: Record<Exclude<KeyPurpose, 'field'>, string> = {
  'blind-index':
    'Refusing to rotate the blind-index key: a blind index is an HMAC of the value under that key, so a ' +
    'new key changes every index value and lookups would stop finding rows written before the rotation ' +
    'until every indexed column is re-indexed, which Bastion does not do yet.',
  pseudonym:
    'Refusing to rotate the pseudonym key: pseudonyms are stable identifiers derived with that key, so a ' +
    'new key gives every subject a new pseudonym and breaks every link to data already stored, exported ' +
    'or logged under the old ones.',
};

/** `bastion keys status|rotate|reencrypt|rewrap`. */
export function registerKeys(program: Command, print: (line: string) => void): void {
  const keys = program
    .command('keys')
    .description('Data keys: status, rotation, re-encryption, and changing the master key');

  keys
    .command('status')
    .description('List data keys (id, purpose, state, dates) and the rows still under non-active keys')
    .option(CONFIG_FLAG, CONFIG_HELP)
    .action(async (options: { config?: string }) => {
      await withDataContext({ configFile: options.config }, async (context) => {
        printKeys(context.keyring.list(), print);
        const remaining = await job(context).remaining();
        print('');
        print('Rows under non-active field keys (re-encrypted by the server, or `bastion keys reencrypt`):');
        const width = Math.max(
          5,
          ...remaining.columns.map((column) => column.table.length + column.column.length + 1),
        );
        for (const column of remaining.columns) {
          print(`  ${`${column.table}.${column.column}`.padEnd(width)}  ${column.rows}`);
        }
        print(`  ${'total'.padEnd(width)}  ${remaining.total}`);
      });
    });

  keys
    .command('rotate')
    .description(
      'Make a new active data key without downtime; the old one stays decrypt-only until every row is re-encrypted',
    )
    .option(
      '--purpose <purpose>',
      `key purpose (${KEY_PURPOSES.join(', ')}); only field keys rotate`,
      'field',
    )
    .option('--no-reencrypt', 'only rotate; leave the rows to the server or `bastion keys reencrypt`')
    .option('--rate <rows>', 're-encryption rate limit, rows per second (default 500)', parseRate)
    .option(CONFIG_FLAG, CONFIG_HELP)
    .action(async (options: { purpose: string; reencrypt: boolean; rate?: number; config?: string }) => {
      const purpose = checkRotatable(options.purpose);
      await withDataContext({ configFile: options.config }, async (context) => {
        const previous = context.keyring.active(purpose).id;
        const rotated = await context.keyring.rotate(purpose);
        await announce(context.config);
        print(`Rotated the ${purpose} key: ${rotated.id} is active; ${previous} is now decrypt-only.`);
        if (!options.reencrypt) {
          const remaining = await job(context).remaining();
          print(
            `${remaining.total} row(s) are under decrypt-only keys; the server re-encrypts them in the ` +
              'background, or run `bastion keys reencrypt`.',
          );
          return;
        }
        await reencrypt(context, options.rate, print);
      });
    });

  keys
    .command('rotate-signing')
    .description(
      'Make a new access-token signing key now; the old one keeps verifying until its tokens expire ' +
        '(or, with --retire-previous, stops at once: every access token issued before is refused)',
    )
    .option('--retire-previous', 'emergency: retire every previous signing key immediately')
    .option(CONFIG_FLAG, CONFIG_HELP)
    .action(async (options: { retirePrevious?: boolean; config?: string }) => {
      await withDataContext({ configFile: options.config }, async (context) => {
        const state = createSharedState({
          redisUrl: context.config.redis.url,
          keyPrefix: context.config.redis.keyPrefix,
        });
        const signing = await SigningKeys.open({
          db: context.database.db,
          cipher: context.cipher,
          clock: systemClock,
          state,
          logger: context.logger,
          rotationDays: context.config.identity.signingKeyRotationDays,
          accessTokenTtlMs: context.config.identity.accessTokenTtlSeconds * 1000,
        });
        try {
          const id = await signing.rotate();
          print(`Rotated the access-token signing key: ${id} is active.`);
          if (options.retirePrevious) {
            const retired = await signing.retirePrevious();
            print(`Retired ${retired.length} previous key(s): ${retired.join(', ') || 'none'}.`);
          }
          if (!context.config.redis.url) {
            print('Running instances pick the change up within 5 minutes (with REDIS_URL set: at once).');
          }
        } finally {
          await signing.close();
          await state.close().catch(() => {});
        }
      });
    });

  keys
    .command('reencrypt')
    .description(
      'Re-encrypt every row still under a decrypt-only key, then retire emptied keys; safe to interrupt and run again',
    )
    .option('--rate <rows>', 'rate limit, rows per second (default 500)', parseRate)
    .option(CONFIG_FLAG, CONFIG_HELP)
    .action(async (options: { rate?: number; config?: string }) => {
      await withDataContext({ configFile: options.config }, (context) =>
        reencrypt(context, options.rate, print),
      );
    });

  keys
    .command('rewrap')
    .description(
      'Change the master key: read the OLD master key (base64) on stdin and re-wrap every data key under the ' +
        'configured one (BASTION_MASTER_KEY, or the development key file); safe to run again',
    )
    .option(CONFIG_FLAG, CONFIG_HELP)
    .addHelpText(
      'after',
      '\nSteps: 1. generate the new key (openssl rand -base64 32); 2. run\n' +
        '  BASTION_MASTER_KEY=<new> bastion keys rewrap < old-master-key.txt\n' +
        '3. restart every instance with the new BASTION_MASTER_KEY. Instances still running with the old\n' +
        'key keep working with the keys they hold, but cannot load new ones until restarted.',
    )
    .action(async (options: { config?: string }) => {
      const config = await loadConfig({ file: options.config });
      const problems = productionProblems(config);
      if (problems.length > 0) throw new ConfigError(problems, 'Refusing to run in production');
      const old = decodeMasterKey(await readStdin());
      if (!old.ok) {
        throw new Error(
          `The old master key read from stdin ${old.reason}; pipe it in, e.g. \`bastion keys rewrap < old.key\``,
        );
      }
      // Not withDataContext: it opens the keyring with the configured key, which fails until this has run.
      const database = openDatabase({ url: config.database.url, poolMax: 2 });
      try {
        const pending = await pendingMigrations(database);
        if (pending.length > 0) {
          throw new StartupError(
            `The database has pending migrations (${pending.join(', ')}); run \`bastion migrate up\` first.`,
          );
        }
        const next = await resolveMasterKey(config, (message) => process.stderr.write(`${message}\n`));
        const count = await rewrapDataKeys(database.db, old.key, next);
        print(
          count === 0
            ? 'Every data key is already wrapped by the configured master key; nothing to do.'
            : `Re-wrapped ${count} data key(s) under the configured master key.`,
        );
        print('Restart every instance with the new master key; the old one can then be destroyed.');
      } finally {
        await database.close();
      }
    });
}

function checkRotatable(purpose: string): KeyPurpose {
  if (!KEY_PURPOSES.includes(purpose as KeyPurpose)) {
    throw new Error(`--purpose must be one of ${KEY_PURPOSES.join(', ')} (got "${purpose}")`);
  }
  if (purpose === 'field') return purpose;
  const refusal = ROTATION_REFUSALS[purpose as Exclude<KeyPurpose, 'field'>];
  throw new Error(
    `${refusal} Only field keys rotate without downtime: \`bastion keys rotate --purpose field\`.`,
  );
}

function job(context: DataContext, options: { rate?: number; print?: (line: string) => void } = {}) {
  const { print } = options;
  return new ReencryptionJob({
    db: context.database.db,
    cipher: context.cipher,
    keyring: context.keyring,
    logger: context.logger,
    maxRowsPerSecond: options.rate,
    onProgress: print
      ? (progress) =>
          print(
            `  ${progress.table}.${progress.column}: ${progress.done} re-encrypted, ` +
              `${progress.failed} failed, ${progress.remaining} remaining`,
          )
      : undefined,
  });
}

/** Runs the job in the foreground; Ctrl-C stops it after the current batch (the next run resumes). */
async function reencrypt(context: DataContext, rate: number | undefined, print: (line: string) => void) {
  const reencryption = job(context, { rate, print });
  const before = await reencryption.remaining();
  print(`Re-encrypting ${before.total} row(s) under decrypt-only keys…`);
  const interrupt = () => {
    void reencryption.stop();
  };
  process.once('SIGINT', interrupt);
  let result: ReencryptionResult;
  try {
    result = await reencryption.runOnce();
  } finally {
    process.removeListener('SIGINT', interrupt);
  }
  if (result.retired.length > 0) await announce(context.config);
  print(
    `${result.stopped ? 'Stopped' : 'Done'}: ${result.reencrypted} re-encrypted, ${result.failed} failed, ` +
      `${result.remaining.total} remaining.`,
  );
  for (const id of result.retired) print(`Retired ${id} (nothing is left under it).`);
  if (result.stopped) print('Run `bastion keys reencrypt` to resume.');
  if (result.failed > 0) {
    print(
      `${result.failed} value(s) could not be decrypted; their locations are in the log. They were left as they were.`,
    );
    process.exitCode = 1;
  }
}

function printKeys(keys: DataKeyInfo[], print: (line: string) => void): void {
  const rows = [
    ['ID', 'PURPOSE', 'STATE', 'CREATED', 'STATE CHANGED'],
    ...[...keys]
      .sort((a, b) => a.purpose.localeCompare(b.purpose) || b.createdAt.localeCompare(a.createdAt))
      .map((key) => [key.id, key.purpose, key.state, key.createdAt, key.stateChangedAt]),
  ];
  const widths = rows[0]!.map((_, index) => Math.max(...rows.map((row) => row[index]!.length)));
  for (const row of rows) {
    print(
      row
        .map((cell, index) => cell.padEnd(widths[index]!))
        .join('  ')
        .trimEnd(),
    );
  }
}

/** Tells running instances (through Redis, when configured) to reload the keyring now. */
async function announce(config: BastionConfig): Promise<void> {
  if (!config.redis.url) return;
  const state = createSharedState({ redisUrl: config.redis.url, keyPrefix: config.redis.keyPrefix });
  try {
    await state.publish(KEYRING_CHANNEL, 'reload');
  } catch (error) {
    // Instances reload on their own when they meet an unknown key id, and poll for rotations.
    process.stderr.write(`Could not notify running instances through Redis: ${(error as Error).message}\n`);
  } finally {
    await state.close().catch(() => {});
  }
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('Old master key (base64), then Enter and Ctrl-D: ');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

function parseRate(value: string): number {
  const rate = Number(value);
  if (!(rate > 0) || !Number.isFinite(rate))
    throw new Error(`--rate expects a positive number, got "${value}"`);
  return rate;
}
