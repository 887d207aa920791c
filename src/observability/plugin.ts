import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Logger } from 'pino';
import { urlPath } from '../core/url-path.ts';
import type { HttpMetrics } from './http-metrics.ts';
import { trustedLinesOf } from './logger.ts';
import { REQUEST_ID_PATTERN } from './request-id.ts';
import '../server/fastify-types.ts';

/** Options of the observability plugin. */
export interface ObservabilityOptions {
  metrics: HttpMetrics;
  /**
   * Decides, on the way in, whether a request is served at all (draining, load shedding); it
   * answers a request it turns away itself and returns false. Default: every request is served.
   */
  admit?: (request: FastifyRequest, reply: FastifyReply) => boolean | Promise<boolean>;
  /** Told of every finished request with its status (threat scoring counts 404s). */
  finished?: (request: FastifyRequest, status: number) => void;
}

/**
 * Request id echo, one metric observation and one access-log line per request. Per-route
 * metric recorders are built when routes are registered, not per request.
 */
export const observability = fp<ObservabilityOptions>(
  async (app: FastifyInstance, { metrics, admit, finished }) => {
    app.addHook('onRoute', (route) => {
      const pattern = route.url ?? route.path;
      // A route may declare several methods; the recorder labels each request by its own.
      route.config = {
        ...route.config,
        bastionRecorder: metrics.forRoute(route.method, pattern),
        bastionRouteJson: JSON.stringify(pattern),
      };
    });

    // A matched route's access line holds nothing a client chose but the request id and the
    // client IP; when both are well-formed, the line is written without the cleaning pass that
    // every other log line goes through.
    const trusted = trustedLinesOf(app.log as Logger);

    app.decorateRequest('bastionFinished', false);
    app.decorateRequest('bastionStartedAt', 0);
    app.decorateRequest('bastionRoute', null);

    // The one hook every request passes on its way in (each hook costs every request).
    app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
      request.bastionStartedAt = performance.now();
      request.bastionRoute = request.routeOptions.config;
      reply.header('x-request-id', request.id);
      metrics.active.inc();
      const verdict = admit === undefined ? true : admit(request, reply);
      if (verdict === true) done();
      else if (verdict !== false) verdict.then((admitted) => admitted && done(), done);
    });

    // Exactly once per request: when the response is sent, or when the client goes away first
    // (then with status 499, as nginx logs it), so the in-flight gauge never drifts.
    const finish = (request: FastifyRequest, status: number, elapsed: number, aborted: boolean) => {
      if (request.bastionFinished) return;
      request.bastionFinished = true;
      metrics.active.dec();
      const config = request.bastionRoute ?? request.routeOptions.config;
      const recorder = config.bastionRecorder;
      (recorder ?? metrics.forUnmatched(request.method)).observe(status, elapsed / 1000, request.method);
      finished?.(request, status);
      const durationMs = Math.round(elapsed * 100) / 100;
      const message = aborted ? ABORTED : COMPLETED;
      if (
        trusted !== undefined &&
        config.bastionRouteJson !== undefined &&
        isIP(request.ip) !== 0 &&
        REQUEST_ID_PATTERN.test(request.id)
      ) {
        if (trusted.enabled) {
          trusted.info(
            trustedAccessFields(request, config.bastionRouteJson, status, durationMs, aborted),
            message,
          );
        }
        return;
      }
      request.log.info(accessFields(request, status, durationMs, aborted, recorder === undefined), message);
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

const COMPLETED = 'request completed';
const ABORTED = 'request aborted by client';

/**
 * The access line's fields. Always the same keys in the same order (one object shape for the
 * engine); pino leaves out the undefined ones.
 */
function accessFields(
  request: FastifyRequest,
  status: number,
  durationMs: number,
  aborted: boolean,
  unmatched: boolean,
): Record<string, unknown> {
  const principal = request.principal;
  return {
    method: request.method,
    route: request.routeOptions.url ?? null,
    path: unmatched ? urlPath(request.url, MAX_LOGGED_PATH) : undefined,
    status,
    aborted: aborted ? true : undefined,
    duration_ms: durationMs,
    client_ip: request.ip,
    user_id: principal?.kind === 'user' ? principal.id : null,
    api_key_id: principal?.kind === 'api_key' ? principal.id : undefined,
    org_id: principal?.orgId ?? null,
  };
}

/**
 * The same fields serialized, for a matched route whose request id and client IP are
 * well-formed (neither needs escaping); `request_id` comes first, where the request logger's
 * binding puts it. Kept equal to `accessFields` by a test.
 */
function trustedAccessFields(
  request: FastifyRequest,
  routeJson: string,
  status: number,
  durationMs: number,
  aborted: boolean,
): string {
  const principal = request.principal;
  const userId = principal?.kind === 'user' ? JSON.stringify(principal.id) : 'null';
  const apiKeyId = principal?.kind === 'api_key' ? `"api_key_id":${JSON.stringify(principal.id)},` : '';
  const orgId = JSON.stringify(principal?.orgId ?? null);
  return (
    `"request_id":"${request.id}","method":${JSON.stringify(request.method)},"route":${routeJson},` +
    `"status":${status},${aborted ? '"aborted":true,' : ''}"duration_ms":${durationMs},` +
    `"client_ip":"${request.ip}","user_id":${userId},${apiKeyId}"org_id":${orgId}`
  );
}

/** Status logged for a request whose client closed the connection before the answer. */
const CLIENT_CLOSED_REQUEST = 499;
/** Longest path written to the access log (paths of unmatched routes are attacker-chosen). */
const MAX_LOGGED_PATH = 256;
