import { Command, CommanderError } from 'commander';
import { ConfigError, EXIT_CONFIG } from '../config/errors.ts';
import { BUILD_INFO } from '../observability/build-info.ts';
import { StartupError } from '../server/startup-error.ts';
import { registerAlerts } from './commands/alerts.ts';
import { registerConfigCheck } from './commands/config-check.ts';
import { registerKeys } from './commands/keys.ts';
import { registerMigrate } from './commands/migrate.ts';
import { registerRoles } from './commands/roles.ts';
import { registerSecrets } from './commands/secrets.ts';
import { registerServe } from './commands/serve.ts';
import { registerUsers } from './commands/users.ts';

/** The `bastion` command tree. */
export function buildProgram(
  print: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): Command {
  const program = new Command('bastion')
    .description('Security and observability platform for HTTP APIs')
    .version(BUILD_INFO.version)
    .showHelpAfterError()
    .exitOverride();
  registerServe(program);
  registerMigrate(program, print);
  registerConfigCheck(program, print);
  registerKeys(program, print);
  registerRoles(program, print);
  registerSecrets(program, print);
  registerUsers(program, print);
  registerAlerts(program, print);
  return program;
}

/** Runs the CLI; returns the exit code (errors are printed, never thrown). */
export async function runCli(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      return EXIT_CONFIG;
    }
    if (error instanceof StartupError) {
      process.stderr.write(`${error.message}\n`);
      return error.exitCode;
    }
    process.stderr.write(`bastion: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}
