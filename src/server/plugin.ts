import swagger from '@fastify/swagger';
import underPressure from '@fastify/under-pressure';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Logger } from 'pino';
import { loadConfig } from '../config/load-config.ts';
import type { BastionConfig } from '../config/schema.ts';
import type { Clock } from '../core/clock.ts';
import { BastionError, HttpErrors } from '../core/errors.ts';
import type { Authenticator } from '../core/principal.ts';
import { requestContext } from '../identity/audit-log.ts';
import { registerConsoleSessionRoutes } from '../identity/console-routes.ts';
import { registerIdentityRoutes } from '../identity/routes.ts';
import { BUILD_INFO } from '../observability/build-info.ts';
import { detailedHealth, registerHealthRoutes } from '../observability/health-routes.ts';
import { createLogger } from '../observability/logger.ts';
import { registerMetricsRoute } from '../observability/metrics-route.ts';
import { observability } from '../observability/plugin.ts';
import { AttackDetection } from '../protection/attack-detection.ts';
import { normalizeOrigin } from '../protection/cors.ts';
import { ACCESS_COOKIE, cookieValue, csrfProblem } from '../protection/csrf.ts';
import { ProtectionErrors } from '../protection/errors.ts';
import { RequestProtection } from '../protection/request-protection.ts';
import { migrationStatus } from '../storage/migrator.ts';
import { registerAdminRoutes } from './admin-routes.ts';
import { registerAlertRoutes } from './alert-routes.ts';
import { errorBody, installErrorHandling } from './error-handler.ts';
import { registerLiveEventsRoute } from './live-events/live-events-route.ts';
import { registerMonitoringRoutes } from './monitoring-routes.ts';
import { registerReferenceApi } from './reference-api/index.ts';
import { routeAuth, routeOf } from './route-auth.ts';
import { registerSecurityRoutes } from './security-routes.ts';
import { createServices, type Services } from './services.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** Bastion's services: database, shared state, identity, metrics, health. */
    bastion: Services;
  }
}

/** Options of the {@link bastion} plugin. */
export interface BastionPluginOptions {
  /** The configuration; default: loaded from the environment and `BASTION_CONFIG`. */
  config?: BastionConfig;
  /** Ready services to use (they are then not closed with the app); default: made from `config`. */
  services?: Services;
  /** Logger for Bastion's own services (the app's request logs stay on the app's logger). */
  logger?: Logger;
  clock?: Clock;
  /** Apply pending migrations even in production. Default false. */
  migrate?: boolean;
  /** PostgreSQL schema to use (tests). */
  databaseSchema?: string;
  /** Finds the caller of non-public routes; default: Bastion identity (access tokens and API keys). */
  authenticate?: Authenticator<FastifyRequest>;
  /** Serve `/auth/*`, `/.well-known/jwks.json` and `/api/v1/admin/*`. Default true. */
  identityRoutes?: boolean;
  /** Serve the reference API (organizations, workflows, integrations…). Default true. */
  referenceApi?: boolean;
  /** Serve `/openapi.json` of every route with a schema. Default true. */
  openapi?: boolean;
}

const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;
const BEARER_PREFIX = 'Bearer ';

/** The token of `Authorization: Bearer <token>` (scheme in any case, spaces or tabs around), or null. */
function bearerOf(authorization: string): string | null {
  // The usual spelling is read without a regular expression (this runs on every request).
  if (
    authorization.startsWith(BEARER_PREFIX) &&
    authorization.length > BEARER_PREFIX.length &&
    authorization.indexOf(' ', BEARER_PREFIX.length) === -1 &&
    !authorization.includes('\t')
  ) {
    return authorization.slice(BEARER_PREFIX.length);
  }
  return BEARER.exec(authorization)?.[1] ?? null;
}

/** The credentials a request presents: `Authorization: Bearer …` and/or `X-API-Key`. */
export function credentialsOf(request: FastifyRequest): { bearer: string | null; apiKey: string | null } {
  const authorization = request.headers.authorization;
  const apiKey = request.headers['x-api-key'];
  return {
    bearer: typeof authorization === 'string' ? bearerOf(authorization) : null,
    apiKey: typeof apiKey === 'string' && apiKey.length > 0 ? apiKey : null,
  };
}

/**
 * Bastion as a Fastify plugin (`app.register(bastion, options)`): storage and identity, the
 * route declaration rule (every route sets `config.auth`), authentication and authorization,
 * request ids, access logs, metrics, health, errors, load shedding and the identity routes,
 * applied to every route registered after it. `createApp` is this plugin on a Fastify instance
 * configured for it (request ids, logger, trusted proxies, limits).
 */
export const bastion = fp<BastionPluginOptions>(
  async (app: FastifyInstance, options) => {
    const config = options.config ?? options.services?.config ?? (await loadConfig());
    const services =
      options.services ??
      (await createServices({
        config,
        logger: options.logger ?? createLogger(config),
        clock: options.clock,
        migrate: options.migrate,
        databaseSchema: options.databaseSchema,
      }));
    app.decorate('bastion', services);
    if (!options.services) app.addHook('onClose', async () => services.close());

    const detection = new AttackDetection({
      config,
      events: services.securityEvents,
      threat: services.threat,
    });
    // Requests no route matched are inspected too (scanners probe paths that do not exist).
    installErrorHandling(app, { notFoundPreValidation: detection.afterBody });
    const consoleOrigins = new Set(config.security.corsOrigins.map(normalizeOrigin));
    const authenticate =
      options.authenticate ??
      ((request: FastifyRequest) => {
        const credentials = credentialsOf(request);
        if (credentials.bearer === null && credentials.apiKey === null) {
          // The console's cookie session: ambient credentials, so unsafe requests need CSRF proof.
          const cookie = cookieValue(request.headers.cookie, ACCESS_COOKIE);
          if (cookie === null) return null;
          if (csrfProblem(request, consoleOrigins)) throw new BastionError(ProtectionErrors.csrfFailed);
          credentials.bearer = cookie;
        }
        return services.identity.authenticate(credentials, () => requestContext(request));
      });
    const protection = new RequestProtection({
      config,
      ipRules: services.ipRules,
      events: services.securityEvents,
      rateLimits: services.rateLimits,
      threat: services.threat,
    });
    protection.install(app);
    detection.install(app);
    await app.register(routeAuth, {
      authenticate,
      authorized: (request, reply) => protection.limitPrincipal(request, reply),
    });
    if (options.openapi !== false) {
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
    }
    const overloaded = config.loadShedding.enabled ? await eventLoopPressure(app, config) : null;
    await app.register(observability, {
      metrics: services.httpMetrics,
      admit: admission(app, config, overloaded, protection, detection),
      finished: (request, status) => {
        if (status === 404) services.threat.add(request.ip, 'not_found');
      },
    });

    registerHealthRoutes(app, services.health, () => detailedFacts(services, protection), BUILD_INFO);
    if (config.metrics.enabled && config.metrics.listen === null) {
      registerMetricsRoute(app, services.registry, config.metrics.token);
    }
    if (options.identityRoutes !== false) {
      registerIdentityRoutes(app, services.identity);
      registerAdminRoutes(app, services);
      registerSecurityRoutes(app, services);
      registerAlertRoutes(app, services);
      registerMonitoringRoutes(app, services, () =>
        detailedHealth(services.health, () => detailedFacts(services, protection), BUILD_INFO),
      );
      await registerLiveEventsRoute(app, services);
      registerConsoleSessionRoutes(app, services.identity, {
        secure: config.env === 'production',
        sessionSeconds: config.identity.sessionAbsoluteTimeoutSeconds,
        allowedOrigins: consoleOrigins,
      });
    }
    if (options.referenceApi !== false) registerReferenceApi(app, services);
    if (options.openapi !== false) {
      app.get('/openapi.json', { config: { auth: 'public' }, schema: { hide: true } }, async () =>
        app.swagger(),
      );
    }
  },
  { name: 'bastion', fastify: '5.x' },
);

/**
 * Whether a request is served (the entry hook's one check, in this order): during a graceful
 * shutdown, in-flight requests finish but new ones (on a kept-alive or pipelined connection; new
 * connections are refused) get a 503 and Connection: close; while the event loop is overloaded,
 * requests get a 503 with Retry-After, except on routes with `config.loadShedding: false`
 * (liveness, metrics); then API protection, then attack detection of a request without a body.
 * Checked in the observability plugin's entry hook rather than in hooks of their own (a hook
 * costs every request).
 */
function admission(
  app: FastifyInstance,
  config: BastionConfig,
  overloaded: (() => number | null) | null,
  protection: RequestProtection,
  detection: AttackDetection,
): (request: FastifyRequest, reply: FastifyReply) => boolean | Promise<boolean> {
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  const retryAfter = String(config.loadShedding.retryAfterSeconds);
  return (request, reply) => {
    protection.setHeaders(request, reply);
    if (closing) {
      reply.header('connection', 'close').code(503).send(errorBody(HttpErrors.unavailable, request.id));
      return false;
    }
    const delay = overloaded === null || routeOf(request).loadShedding === false ? null : overloaded();
    if (delay === null) {
      const admitted = protection.admit(request, reply);
      if (admitted === true) return detection.early(request, reply);
      if (admitted === false) return false;
      return admitted.then((allowed) => allowed && detection.early(request, reply));
    }
    request.log.warn({ event: 'load_shed', type: 'eventLoopDelay', value: delay }, 'shedding load');
    reply.code(503).header('retry-after', retryAfter).send(errorBody(HttpErrors.overloaded, request.id));
    return false;
  };
}

/**
 * @fastify/under-pressure samples the event loop; it is registered in a context of its own that
 * holds no route, so its per-request hook never runs, and Bastion reads its verdict in the entry
 * hook instead. Returns the current delay (ms) when the loop is over the limit, else null (also
 * until two sample intervals after start-up).
 */
async function eventLoopPressure(app: FastifyInstance, config: BastionConfig): Promise<() => number | null> {
  let check: () => number | null = () => null;
  await app.register(async (scope) => {
    await scope.register(underPressure, {
      maxEventLoopDelay: config.loadShedding.maxEventLoopDelayMs,
      sampleInterval: config.loadShedding.sampleIntervalMs,
    });
    check = () => (scope.isUnderPressure() ? scope.memoryUsage().eventLoopDelay : null);
  });
  // Start-up (migrations, compiling schemas, opening storage) blocks the loop once; the samples
  // that saw it are not load, so shedding starts two sample intervals after the server is ready.
  let sheddingFrom = Number.POSITIVE_INFINITY;
  app.addHook('onReady', (done) => {
    sheddingFrom = performance.now() + 2 * config.loadShedding.sampleIntervalMs;
    done();
  });
  let started = false;
  return () => {
    if (!started) {
      if (performance.now() < sheddingFrom) return null;
      started = true;
    }
    return check();
  };
}

async function detailedFacts(
  services: Services,
  protection: RequestProtection,
): Promise<Record<string, unknown>> {
  const [migrations, secrets, outbox] = await Promise.all([
    migrationStatus(services.database).catch(() => null),
    services.vault.summary().catch(() => null),
    services.alerts.outbox.counts().catch(() => null),
  ]);
  return {
    releaseId: BUILD_INFO.version,
    installation_id: services.installationId,
    uptime_seconds: Math.round((services.clock.now() - services.startedAt) / 1000),
    database: { system: services.database.kind },
    shared_state: { backend: services.state.kind, policy: services.config.sharedStatePolicy },
    rate_limits: protection.rateLimitStatus(),
    circuit_breakers: Object.fromEntries(
      Object.entries(services.alerts.outbox.breakerStates()).map(([channel, state]) => [
        `alert_channel:${channel}`,
        state,
      ]),
    ),
    alerting: {
      evaluating_here: services.alerts.leader,
      notifications: outbox ?? 'unavailable',
    },
    secrets: secrets ?? 'unavailable',
    migrations:
      migrations?.map((migration) => ({
        name: migration.name,
        applied_at: migration.executedAt?.toISOString() ?? null,
      })) ?? 'unavailable',
  };
}
