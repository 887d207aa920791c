import { performance } from 'node:perf_hooks';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { urlPath } from '../core/url-path.ts';
import type { HttpMetrics } from './http-metrics.ts';
import '../server/fastify-types.ts';

/** Options of the observability plugin. */
export interface ObservabilityOptions {
  metrics: HttpMetrics;
}

/**
 * Request id echo, one metric observation and one access-log line per request. Per-route
 * metric recorders are built when routes are registered, not per request.
 */
export const observability = fp<ObservabilityOptions>(
  async (app: FastifyInstance, { metrics }) => {
    app.addHook('onRoute', (route) => {
      // A route may declare several methods; the recorder labels each request by its own.
      route.config = {
        ...route.config,
        bastionRecorder: metrics.forRoute(route.method, route.url ?? route.path),
      };
    });

    app.decorateRequest('bastionFinished', false);
    app.decorateRequest('bastionStartedAt', 0);

    app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
      request.bastionStartedAt = performance.now();
      reply.header('x-request-id', request.id);
      metrics.active.inc();
      done();
    });

    // Exactly once per request: when the response is sent, or when the client goes away first
    // (then with status 499, as nginx logs it), so the in-flight gauge never drifts.
    const finish = (request: FastifyRequest, status: number, elapsed: number, aborted: boolean) => {
      if (request.bastionFinished) return;
      request.bastionFinished = true;
      metrics.active.dec();
      const route = request.routeOptions;
      const recorder = route.config.bastionRecorder;
      (recorder ?? metrics.forUnmatched(request.method)).observe(status, elapsed / 1000, request.method);
      const principal = request.principal;
      request.log.info(
        {
          method: request.method,
          route: route.url ?? null,
          ...(recorder ? {} : { path: urlPath(request.url, MAX_LOGGED_PATH) }),
          status,
          ...(aborted ? { aborted: true } : {}),
          duration_ms: Math.round(elapsed * 100) / 100,
          client_ip: request.ip,
          user_id: principal?.kind === 'user' ? principal.id : null,
          api_key_id: principal?.kind === 'api_key' ? principal.id : undefined,
          org_id: principal?.orgId ?? null,
        },
        aborted ? 'request aborted by client' : 'request completed',
      );
    };

    app.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
      finish(request, reply.statusCode, reply.elapsedTime, false);
      done();
    });

    app.addHook('onRequestAbort', (request: FastifyRequest, done: () => void) => {
      finish(request, CLIENT_CLOSED_REQUEST, performance.now() - request.bastionStartedAt, true);
      done();
    });
  },
  { name: 'bastion-observability', fastify: '5.x' },
);

/** Status logged for a request whose client closed the connection before the answer. */
const CLIENT_CLOSED_REQUEST = 499;
/** Longest path written to the access log (paths of unmatched routes are attacker-chosen). */
const MAX_LOGGED_PATH = 256;
