import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { loadConfig } from '../../config/load-config.ts';
import { openDatabase } from '../../storage/database.ts';
import { MIGRATIONS } from '../../storage/migration-list.ts';
import { migrateUp, migrationStatus } from '../../storage/migrator.ts';

/** `bastion migrate status|up`. */
export function registerMigrate(program: Command, print: (line: string) => void): void {
  const migrate = program
    .command('migrate')
    .description('Show or apply database migrations (SQLite or PostgreSQL, per DATABASE_URL)')
    .option('-c, --config <file>', 'YAML or JSON config file (overrides BASTION_CONFIG)');

  migrate
    .command('status', { isDefault: true })
    .description('List migrations and whether each has run; exit 1 when any is pending')
    .action(async () => {
      const config = await loadConfig({ file: migrate.opts().config });
      const sqliteFile = config.database.url.startsWith('sqlite:')
        ? config.database.url.slice('sqlite:'.length)
        : null;
      // Looking must not create: a status check of a database that does not exist yet says so.
      if (sqliteFile && sqliteFile !== ':memory:' && !existsSync(sqliteFile)) {
        for (const name of Object.keys(MIGRATIONS)) print(`pending  ${name}`);
        print(`No database at ${sqliteFile} yet; \`bastion migrate up\` (or \`bastion serve\`) creates it.`);
        process.exitCode = 1;
        return;
      }
      const database = openDatabase({ url: config.database.url });
      try {
        const states = await migrationStatus(database);
        for (const state of states) {
          print(
            `${state.executedAt ? 'applied' : 'pending'}  ${state.name}${state.executedAt ? `  ${state.executedAt.toISOString()}` : ''}`,
          );
        }
        const pending = states.filter((state) => !state.executedAt).length;
        print(
          pending === 0
            ? 'Database is up to date.'
            : `${pending} pending migration(s); run \`bastion migrate up\`.`,
        );
        if (pending > 0) process.exitCode = 1;
      } finally {
        await database.close();
      }
    });

  migrate
    .command('up')
    .description('Apply every pending migration, in order')
    .action(async () => {
      const config = await loadConfig({ file: migrate.opts().config });
      const database = openDatabase({ url: config.database.url });
      try {
        const applied = await migrateUp(database);
        for (const name of applied) print(`applied  ${name}`);
        print(
          applied.length === 0
            ? 'Nothing to apply; database is up to date.'
            : `Applied ${applied.length} migration(s).`,
        );
      } finally {
        await database.close();
      }
    });
}
