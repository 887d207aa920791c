import { type Command, InvalidArgumentError, Option } from 'commander';
import { systemClock } from '../../core/clock.ts';
import {
  checkSecretName,
  MAX_ROTATION_PERIOD_DAYS,
  MAX_SECRET_VALUE_BYTES,
  type SecretInfo,
  SecretsVault,
} from '../../data-protection/secrets-vault.ts';
import { withDataContext } from '../data-context.ts';
import { readSecretInput } from '../read-secret-input.ts';

const NAME_HELP = 'secret name: 1-200 characters of letters, digits and . _ - / :';

function configOption(): Option {
  return new Option('-c, --config <file>', 'YAML or JSON config file (overrides BASTION_CONFIG)');
}

function parseDays(value: string): number {
  const days = Number(value);
  if (!/^\d+$/.test(value) || days < 1 || days > MAX_ROTATION_PERIOD_DAYS) {
    throw new InvalidArgumentError(`expected a whole number of days from 1 to ${MAX_ROTATION_PERIOD_DAYS}`);
  }
  return days;
}

function parseVersion(value: string): number {
  const version = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(version) || version < 1) {
    throw new InvalidArgumentError('expected a version number (1, 2, …)');
  }
  return version;
}

/** Reads the value before the database is opened, so a slow typist holds no connection. */
async function readValue(name: string): Promise<string> {
  const value = await readSecretInput({ prompt: `Value for ${name}: `, maxBytes: MAX_SECRET_VALUE_BYTES });
  if (value === '') {
    throw new Error(
      `Refusing an empty value for ${name}: pass the value on stdin, e.g. \`printf %s "$VALUE" | bastion secrets set ${name}\``,
    );
  }
  return value;
}

function withVault<T>(configFile: string | undefined, work: (vault: SecretsVault) => Promise<T>): Promise<T> {
  return withDataContext({ configFile }, (context) =>
    work(new SecretsVault({ db: context.database.db, cipher: context.cipher, clock: systemClock })),
  );
}

/** `2026-01-01T00:00:00.000Z` → `2026-01-01T00:00:00Z`: seconds are precise enough for people. */
function shortTime(iso: string | null, none: string): string {
  return iso === null ? none : iso.replace(/\.\d{3}Z$/, 'Z');
}

/** The `list` table: one line per secret, columns padded to their widest cell. */
function secretsTable(secrets: readonly SecretInfo[]): string[] {
  const header = ['NAME', 'VERSION', 'CREATED', 'ROTATED', 'LAST READ', 'ROTATION', ''];
  const rows = secrets.map((secret) => [
    secret.name,
    String(secret.current_version),
    shortTime(secret.created_at, '-'),
    shortTime(secret.rotated_at, '-'),
    shortTime(secret.last_read_at, 'never'),
    secret.rotation_period_days === null ? '-' : `${secret.rotation_period_days}d`,
    secret.overdue ? 'OVERDUE' : '',
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column]?.length ?? 0)),
  );
  return [header, ...rows].map((cells) =>
    cells
      .map((cell, column) => cell.padEnd(widths[column] ?? 0))
      .join('  ')
      .trimEnd(),
  );
}

/** `bastion secrets set|get|list|delete|rotate`; values come from stdin, never from arguments. */
export function registerSecrets(program: Command, print: (line: string) => void): void {
  const secrets = program
    .command('secrets')
    .description(
      'Manage the secrets vault: named, encrypted, versioned secrets (values are read from stdin, never from arguments)',
    );

  secrets
    .command('set')
    .description(
      'Create a secret from the value on stdin (one trailing newline removed; a terminal prompts without echo); fails if the name exists',
    )
    .argument('<name>', NAME_HELP)
    .option('--rotation-days <days>', 'days after which a rotation is due (reported when overdue)', parseDays)
    .addOption(configOption())
    .action(async (name: string, options: { rotationDays?: number; config?: string }) => {
      checkSecretName(name);
      const value = await readValue(name);
      const info = await withVault(options.config, (vault) =>
        vault.set(name, value, { rotationPeriodDays: options.rotationDays ?? null }),
      );
      print(`Created secret ${info.name} (version ${info.current_version}).`);
    });

  secrets
    .command('get')
    .description('Print the value of a secret (the current version unless --secret-version) to stdout')
    .argument('<name>', NAME_HELP)
    .option('--secret-version <n>', 'an earlier version instead of the current one', parseVersion)
    .addOption(configOption())
    .action(async (name: string, options: { secretVersion?: number; config?: string }) => {
      checkSecretName(name);
      const secret = await withVault(options.config, (vault) =>
        options.secretVersion === undefined ? vault.get(name) : vault.getVersion(name, options.secretVersion),
      );
      print(secret.value);
    });

  secrets
    .command('list')
    .description('List secrets with their versions, times and rotation status (never values)')
    .option('--json', 'print JSON instead of a table')
    .addOption(configOption())
    .action(async (options: { json?: boolean; config?: string }) => {
      const list = await withVault(options.config, (vault) => vault.list());
      if (options.json) return print(JSON.stringify(list, null, 2));
      if (list.length === 0) return print('No secrets.');
      for (const line of secretsTable(list)) print(line);
      const overdue = list.filter((secret) => secret.overdue).length;
      if (overdue > 0)
        print(`${overdue} secret(s) overdue for rotation; run \`bastion secrets rotate NAME\`.`);
    });

  secrets
    .command('delete')
    .description('Delete a secret and every version of it')
    .argument('<name>', NAME_HELP)
    .addOption(configOption())
    .action(async (name: string, options: { config?: string }) => {
      checkSecretName(name);
      await withVault(options.config, (vault) => vault.delete(name));
      print(`Deleted secret ${name}.`);
    });

  secrets
    .command('rotate')
    .description(
      'Add a new version from the value on stdin and make it current (older versions stay readable)',
    )
    .argument('<name>', NAME_HELP)
    .option('--rotation-days <days>', 'also change the rotation period', parseDays)
    .addOption(configOption())
    .action(async (name: string, options: { rotationDays?: number; config?: string }) => {
      checkSecretName(name);
      const value = await readValue(name);
      const info = await withVault(options.config, (vault) =>
        vault.rotate(name, value, { rotationPeriodDays: options.rotationDays }),
      );
      print(`Rotated secret ${info.name} to version ${info.current_version}.`);
    });
}
