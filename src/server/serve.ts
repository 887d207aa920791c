import type { FastifyInstance } from 'fastify';
import { createMetricsApp } from './create-app.ts';

/** Time allowed, past the shutdown timeout, for closing storage before the process gives up. */
const SHUTDOWN_GRACE_MS = 5000;

/** A listening server and how to stop it. */
export interface RunningServer {
  app: FastifyInstance;
  /** Addresses listened on (main, then the metrics listener if any). */
  addresses: string[];
  /** Stops accepting, lets in-flight requests finish (up to the shutdown timeout), closes storage. */
  shutdown(reason: string): Promise<void>;
}

/**
 * Starts listening (and the separate metrics listener when configured) and installs SIGTERM /
 * SIGINT handlers that shut down gracefully and exit 0.
 */
export async function listen(
  app: FastifyInstance,
  options: { installSignalHandlers?: boolean; exit?: (code: number) => void } = {},
): Promise<RunningServer> {
  const { config, logger } = app.bastion;
  const addresses = [await app.listen({ host: config.server.host, port: config.server.port })];
  let metricsApp: FastifyInstance | null = null;
  if (config.metrics.enabled && config.metrics.listen) {
    metricsApp = await createMetricsApp(app.bastion);
    addresses.push(
      await metricsApp.listen({ host: config.metrics.listen.host, port: config.metrics.listen.port }),
    );
  }
  logger.info(
    { addresses, env: config.env, database: app.bastion.database.kind, state: app.bastion.state.kind },
    'listening',
  );

  let stopping: Promise<void> | null = null;
  const shutdown = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      logger.info({ reason, timeout_ms: config.server.shutdownTimeoutMs }, 'shutting down');
      // Past the timeout, remaining connections are cut so the process can exit.
      const timer = setTimeout(() => {
        logger.warn('shutdown timeout reached; closing remaining connections');
        app.server.closeAllConnections();
      }, config.server.shutdownTimeoutMs);
      timer.unref();
      try {
        await Promise.all([app.close(), metricsApp?.close()]);
      } finally {
        clearTimeout(timer);
      }
      logger.info('shutdown complete');
      logger.flush?.();
    })();
    return stopping;
  };

  if (options.installSignalHandlers) {
    const exit = options.exit ?? ((code: number) => process.exit(code));
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.once(signal, () => {
        // If closing itself hangs (a stuck query, an unanswered QUIT), the process still ends.
        setTimeout(() => {
          logger.error({ grace_ms: SHUTDOWN_GRACE_MS }, 'shutdown did not finish in time; exiting');
          exit(1);
        }, config.server.shutdownTimeoutMs + SHUTDOWN_GRACE_MS).unref();
        shutdown(signal).then(
          () => exit(0),
          (error: unknown) => {
            logger.error({ err: error }, 'shutdown failed');
            exit(1);
          },
        );
      });
    }
    // A bug that escaped every handler leaves the process in an unknown state: record it, drain
    // what can be drained, and exit non-zero so the supervisor restarts a clean instance.
    const crash = (kind: string) => (error: unknown) => {
      logger.fatal({ err: error, event: kind }, 'unexpected error; shutting down');
      shutdown(kind).finally(() => exit(1));
    };
    process.once('uncaughtException', crash('uncaughtException'));
    process.once('unhandledRejection', crash('unhandledRejection'));
  }
  return { app, addresses, shutdown };
}
