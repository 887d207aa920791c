import { type Command, Option } from 'commander';
import { systemClock } from '../../core/clock.ts';
import { BastionError } from '../../core/errors.ts';
import { BlindIndex, normalizers } from '../../data-protection/blind-index.ts';
import { AuditLog } from '../../identity/audit-log.ts';
import { MAX_PASSWORD_LENGTH } from '../../identity/passwords.ts';
import { EMAIL_INDEX_NAME, UserStore } from '../../identity/users.ts';
import { withDataContext } from '../data-context.ts';
import { readSecretInput } from '../read-secret-input.ts';

/** Shortest admin password in production (the production guards ask the same of BASTION_ADMIN_PASSWORD). */
const PRODUCTION_ADMIN_MIN_LENGTH = 12;

/** `bastion users create-admin --email E`: the password comes from stdin or a hidden prompt. */
export function registerUsers(program: Command, print: (line: string) => void): void {
  const users = program.command('users').description('Manage users');
  users
    .command('create-admin')
    .description(
      'Create a platform admin. The password is read from stdin, or asked for without echo on a terminal; ' +
        'it is never taken from the command line.',
    )
    .requiredOption('-e, --email <email>', 'e-mail address of the new admin')
    .option('-n, --name <name>', 'display name', 'Platform admin')
    .addOption(new Option('-c, --config <file>', 'YAML or JSON config file (overrides BASTION_CONFIG)'))
    .action(async (options: { email: string; name: string; config?: string }) => {
      // Read before the database is opened, so a slow typist holds no connection.
      const password = await readSecretInput({
        prompt: `Password for ${options.email}: `,
        maxBytes: MAX_PASSWORD_LENGTH * 4,
      });
      if (password === '') {
        throw new Error('Refusing an empty password: type it at the prompt or pass it on stdin');
      }
      await withDataContext({ configFile: options.config }, async (context) => {
        if (context.config.env === 'production' && [...password].length < PRODUCTION_ADMIN_MIN_LENGTH) {
          throw new Error(
            `In production the admin password needs at least ${PRODUCTION_ADMIN_MIN_LENGTH} characters`,
          );
        }
        const store = new UserStore({
          db: context.database.db,
          cipher: context.cipher,
          emailIndex: new BlindIndex(context.keyring, EMAIL_INDEX_NAME, normalizers.email),
          clock: systemClock,
        });
        try {
          const user = await store.create({
            email: options.email,
            password,
            name: options.name,
            platformAdmin: true,
          });
          await new AuditLog({ db: context.database.db, clock: systemClock, logger: context.logger }).record({
            category: 'change',
            action: 'user.create',
            actor: { type: 'system', id: null },
            target: { type: 'user', id: user.id },
            details: { platform_admin: true, source: 'cli' },
          });
          print(`Created platform admin ${user.email} (id ${user.id}).`);
        } catch (error) {
          if (error instanceof BastionError) {
            const reason =
              (error.details as { suggestions?: string[] } | undefined)?.suggestions?.join(' ') ?? '';
            throw new Error(`${error.message}${reason ? ` (${reason})` : ''}`);
          }
          throw error;
        }
      });
    });
}
