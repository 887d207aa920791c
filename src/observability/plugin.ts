import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
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

    app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
      reply.header('x-request-id', request.id);
      metrics.active.inc();
      done();
    });

    app.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
      metrics.active.dec();
      const elapsed = reply.elapsedTime;
      const status = reply.statusCode;
      const recorder = request.routeOptions.config.bastionRecorder;
      (recorder ?? metrics.forUnmatched(request.method)).observe(status, elapsed / 1000, request.method);
      const principal = request.principal;
      request.log.info(
        {
          method: request.method,
          route: request.routeOptions.url ?? null,
          ...(recorder ? {} : { path: pathOf(request.url) }),
          status,
          duration_ms: Math.round(elapsed * 100) / 100,
          client_ip: request.ip,
          user_id: principal?.kind === 'user' ? principal.id : null,
          api_key_id: principal?.kind === 'api_key' ? principal.id : undefined,
          org_id: principal?.orgId ?? null,
        },
        'request completed',
      );
      done();
    });
  },
  { name: 'bastion-observability', fastify: '5.x' },
);

function pathOf(url: string): string {
  const end = url.indexOf('?');
  return end === -1 ? url : url.slice(0, end);
}
