import type { Command } from 'commander';
import { EXIT_CONFIG, formatProblem } from '../../config/errors.ts';
import { loadConfig } from '../../config/load-config.ts';
import { productionProblems } from '../../config/production-guards.ts';

/** `bastion config check`: the start-up validation and production guards, without starting. */
export function registerConfigCheck(program: Command, print: (line: string) => void): void {
  const config = program.command('config').description('Inspect the configuration');
  config
    .command('check')
    .description('Validate the configuration and, in production, the production guards; exit 78 on problems')
    .option('-c, --config <file>', 'YAML or JSON config file (overrides BASTION_CONFIG)')
    .option('--production', 'check as if NODE_ENV=production')
    .action(async (options: { config?: string; production?: boolean }) => {
      const loaded = await loadConfig({
        file: options.config,
        overrides: options.production ? { env: 'production' } : {},
      });
      const problems = productionProblems(loaded);
      if (problems.length > 0) {
        print(`Refusing to start in production — ${problems.length} problem(s):`);
        for (const problem of problems) print(`  - ${formatProblem(problem)}`);
        process.exitCode = EXIT_CONFIG;
        return;
      }
      print(`Configuration OK (${loaded.env}).`);
      if (loaded.env !== 'production') {
        print(
          'Production guards were not applied; run with --production (or NODE_ENV=production) to apply them.',
        );
      }
    });
}
