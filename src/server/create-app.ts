import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { Logger } from 'pino';
import type { BastionConfig } from '../config/schema.ts';
import type { Clock } from '../core/clock.ts';
import type { Authenticator } from '../core/principal.ts';
import { LazyChildLogger } from '../observability/lazy-child-logger.ts';
import { createLogger, type LogDestination } from '../observability/logger.ts';
import { registerMetricsRoute } from '../observability/metrics-route.ts';
import { requestIdFrom } from '../observability/request-id.ts';
import { clientErrorHandler, frameworkErrorHandler, installErrorHandling } from './error-handler.ts';
import { bastion } from './plugin.ts';
import { routeAuth } from './route-auth.ts';
import { createServices, type Services } from './services.ts';

/** Options for `createApp`. */
export interface CreateAppOptions {
  config: BastionConfig;
  /** Where logs go (a stream, or a file path); default stdout. Ignored when `logger` is given. */
  logDestination?: LogDestination;
  /** A ready logger to use instead. */
  logger?: Logger;
  clock?: Clock;
  /** Apply pending migrations even in production. Default false. */
  migrate?: boolean;
  /** PostgreSQL schema to use (tests). */
  databaseSchema?: string;
  /** Finds the caller of non-public routes; default: Bastion identity (access tokens, API keys). */
  authenticate?: Authenticator<FastifyRequest>;
  /** Adds application routes before the app is ready. */
  routes?: (app: FastifyInstance) => void | Promise<void>;
}

/**
 * Builds the whole Bastion server: storage, request ids, logging, metrics, health, route
 * declaration rule, errors and load shedding. The returned app is ready but not listening.
 */
export async function createApp(options: CreateAppOptions): Promise<FastifyInstance> {
  const { config } = options;
  const logger = options.logger ?? createLogger(config, options.logDestination);
  const services = await createServices({
    config,
    logger,
    clock: options.clock,
    migrate: options.migrate,
    databaseSchema: options.databaseSchema,
  });

  const trusted = config.server.trustedProxies;
  const app = Fastify({
    // pino's Logger is a FastifyBaseLogger; widening keeps the app's type the plain default.
    loggerInstance: logger as FastifyBaseLogger,
    // One access line per request is written by the observability plugin instead.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
    // `request.log` is built only when something logs through it (see LazyChildLogger).
    childLoggerFactory: (parent, bindings, options) => new LazyChildLogger(parent, bindings, options),
    requestIdHeader: false,
    genReqId: (request) => requestIdFrom(request.headers['x-request-id']),
    bodyLimit: config.server.bodyLimit,
    trustProxy: trusted.length > 0 ? trusted : false,
    requestTimeout: config.server.requestTimeoutMs,
    keepAliveTimeout: config.server.keepAliveTimeoutMs,
    // Oversized headers are refused by Node's parser (431), and a client that sends its headers
    // too slowly is cut off (408) instead of holding a connection.
    http: {
      maxHeaderSize: config.protection.limits.maxHeaderBytes,
      headersTimeout: config.protection.limits.headersTimeoutMs,
      // Node looks for expired header and request timeouts this often (default 30 s).
      connectionsCheckingInterval: Math.min(1000, config.protection.limits.headersTimeoutMs),
    },
    // Requests that arrive while draining are answered by Bastion's draining hook instead, so they
    // carry X-Request-ID and the error shape like every other response.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    frameworkErrors: frameworkErrorHandler,
    clientErrorHandler,
    // A body field the schema does not declare is refused (400), not silently dropped: no mass
    // assignment, and the caller learns the field was not taken.
    ajv: { customOptions: { removeAdditional: false } },
  });
  app.addHook('onClose', async () => services.close());

  try {
    await app.register(bastion, { services, authenticate: options.authenticate });
    await options.routes?.(app);
    await app.ready();
  } catch (error) {
    await app.close().catch(() => {});
    throw error;
  }
  return app;
}

/** A separate, minimal listener that serves only `/metrics` (`BASTION_METRICS_LISTEN`). */
export async function createMetricsApp(services: Services): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    requestIdHeader: false,
    genReqId: (request) => requestIdFrom(request.headers['x-request-id']),
    frameworkErrors: frameworkErrorHandler,
    clientErrorHandler,
  });
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });
  installErrorHandling(app);
  await app.register(routeAuth, {});
  registerMetricsRoute(app, services.registry, services.config.metrics.token);
  await app.ready();
  return app;
}
