import type { Command } from 'commander';
import { loadConfig } from '../../config/load-config.ts';
import { createLogger } from '../../observability/logger.ts';

/** `bastion serve`: runs the server until SIGTERM or SIGINT. */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('Run the Bastion server (development defaults: SQLite in ./data, memory state, port 8080)')
    .option('-p, --port <port>', 'listener port (overrides PORT)', parsePort)
    .option('-H, --host <host>', 'listener address (overrides HOST)')
    .option('-c, --config <file>', 'YAML or JSON config file (overrides BASTION_CONFIG)')
    .option('--migrate', 'apply pending database migrations at start-up, also in production')
    .action(async (options: { port?: number; host?: string; config?: string; migrate?: boolean }) => {
      const config = await loadConfig({
        file: options.config,
        overrides: { 'server.port': options.port, 'server.host': options.host },
      });
      const logger = createLogger(config);
      // Loaded here, not at the top: every other command (and `--help`) starts without the server.
      const [{ createApp }, { listen }] = await Promise.all([
        import('../../server/create-app.ts'),
        import('../../server/serve.ts'),
      ]);
      const app = await createApp({ config, logger, migrate: options.migrate ?? false });
      await listen(app, { installSignalHandlers: true });
    });
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`--port expects a number from 0 to 65535, got "${value}"`);
  }
  return port;
}
