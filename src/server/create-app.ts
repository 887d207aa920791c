import swagger from '@fastify/swagger';
import underPressure from '@fastify/under-pressure';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { Logger } from 'pino';
import type { BastionConfig } from '../config/schema.ts';
import type { Clock } from '../core/clock.ts';
import { HttpErrors } from '../core/errors.ts';
import type { Authenticator } from '../core/principal.ts';
import { requestContext } from '../identity/audit-log.ts';
import { registerIdentityRoutes } from '../identity/routes.ts';
import { BUILD_INFO } from '../observability/build-info.ts';
import { registerHealthRoutes } from '../observability/health-routes.ts';
import { createLogger, type LogDestination } from '../observability/logger.ts';
import { registerMetricsRoute } from '../observability/metrics-route.ts';
import { observability } from '../observability/plugin.ts';
import { requestIdFrom } from '../observability/request-id.ts';
import { migrationStatus } from '../storage/migrator.ts';
import { registerAdminRoutes } from './admin-routes.ts';
import {
  clientErrorHandler,
  errorBody,
  frameworkErrorHandler,
  installErrorHandling,
} from './error-handler.ts';
import { registerReferenceApi } from './reference-api/index.ts';
import { routeAuth } from './route-auth.ts';
import { createServices, type Services } from './services.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** Bastion's services: database, shared state, metrics, health. */
    bastion: Services;
  }
}

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
  /** Finds the caller of non-public routes; default: nobody (401). */
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
    requestIdHeader: false,
    genReqId: (request) => requestIdFrom(request.headers['x-request-id']),
    bodyLimit: config.server.bodyLimit,
    trustProxy: trusted.length > 0 ? trusted : false,
    requestTimeout: config.server.requestTimeoutMs,
    keepAliveTimeout: config.server.keepAliveTimeoutMs,
    // Requests that arrive while draining are answered by the hook below instead, so that they
    // carry X-Request-ID and the error shape like every other response.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    frameworkErrors: frameworkErrorHandler,
    clientErrorHandler,
    // A body field the schema does not declare is refused (400), not silently dropped: no mass
    // assignment, and the caller learns the field was not taken.
    ajv: { customOptions: { removeAdditional: false } },
  });
  app.decorate('bastion', services);
  app.addHook('onClose', async () => services.close());

  try {
    installErrorHandling(app);
    const authenticate =
      options.authenticate ??
      ((request: FastifyRequest) =>
        services.identity.authenticate(credentialsOf(request), () => requestContext(request)));
    await app.register(routeAuth, { authenticate });
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: { title: 'Bastion API', version: BUILD_INFO.version },
        components: {
          securitySchemes: {
            bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT or bst_ API key' },
            apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
          },
        },
        security: [{ bearer: [] }, { apiKey: [] }],
      },
    });
    await app.register(observability, { metrics: services.httpMetrics });
    // During a graceful shutdown, in-flight requests finish but new ones (on a kept-alive or
    // pipelined connection; new connections are refused) get a 503 and Connection: close.
    let closing = false;
    app.addHook('preClose', (done) => {
      closing = true;
      done();
    });
    app.addHook('onRequest', (request, reply, done) => {
      if (!closing) return done();
      reply.header('connection', 'close').code(503).send(errorBody(HttpErrors.unavailable, request.id));
    });
    if (config.loadShedding.enabled) {
      const retryAfter = String(config.loadShedding.retryAfterSeconds);
      await app.register(underPressure, {
        maxEventLoopDelay: config.loadShedding.maxEventLoopDelayMs,
        sampleInterval: config.loadShedding.sampleIntervalMs,
        retryAfter: config.loadShedding.retryAfterSeconds,
        pressureHandler: (request, reply, type, value) => {
          if (request.routeOptions.config.loadShedding === false) return undefined;
          request.log.warn({ event: 'load_shed', type, value }, 'shedding load');
          // Fastify skips the rest of the request once the reply is sent.
          reply
            .code(503)
            .header('retry-after', retryAfter)
            .send(errorBody(HttpErrors.overloaded, request.id));
          return undefined;
        },
      });
    }
    registerHealthRoutes(app, services.health, () => detailedFacts(services), BUILD_INFO);
    if (config.metrics.enabled && config.metrics.listen === null) {
      registerMetricsRoute(app, services.registry, config.metrics.token);
    }
    registerIdentityRoutes(app, services.identity);
    registerAdminRoutes(app, services);
    registerReferenceApi(app, services);
    app.get('/openapi.json', { config: { auth: 'public' }, schema: { hide: true } }, async () =>
      app.swagger(),
    );
    await options.routes?.(app);
    await app.ready();
  } catch (error) {
    await app.close().catch(() => {});
    throw error;
  }
  return app;
}

const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;

/** The credentials a request presents: `Authorization: Bearer …` and/or `X-API-Key`. */
function credentialsOf(request: FastifyRequest): { bearer: string | null; apiKey: string | null } {
  const authorization = request.headers.authorization;
  const apiKey = request.headers['x-api-key'];
  return {
    bearer: typeof authorization === 'string' ? (BEARER.exec(authorization)?.[1] ?? null) : null,
    apiKey: typeof apiKey === 'string' && apiKey.length > 0 ? apiKey : null,
  };
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

async function detailedFacts(services: Services): Promise<Record<string, unknown>> {
  const [migrations, secrets] = await Promise.all([
    migrationStatus(services.database).catch(() => null),
    services.vault.summary().catch(() => null),
  ]);
  return {
    releaseId: BUILD_INFO.version,
    installation_id: services.installationId,
    uptime_seconds: Math.round((services.clock.now() - services.startedAt) / 1000),
    database: { system: services.database.kind },
    shared_state: { backend: services.state.kind, policy: services.config.sharedStatePolicy },
    circuit_breakers: {},
    secrets: secrets ?? 'unavailable',
    migrations:
      migrations?.map((migration) => ({
        name: migration.name,
        applied_at: migration.executedAt?.toISOString() ?? null,
      })) ?? 'unavailable',
  };
}
