import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { BastionError, HttpErrors } from '../core/errors.ts';
import '../server/fastify-types.ts';

const digest = (value: string) => createHash('sha256').update(value).digest();

/** A constant-time check of `Authorization: Bearer <token>` against the configured token. */
export function bearerMatcher(token: string): (header: string | undefined) => boolean {
  const expected = digest(token);
  return (header) => {
    if (!header?.startsWith('Bearer ')) return false;
    // Comparing digests keeps the comparison constant-time whatever the presented length.
    return timingSafeEqual(digest(header.slice(7).trim()), expected);
  };
}

/** `GET /metrics`: the Prometheus exposition, behind the bearer token when one is set. */
export function registerMetricsRoute(app: FastifyInstance, registry: Registry, token: string | null): void {
  const authorized = token ? bearerMatcher(token) : () => true;
  app.get('/metrics', { config: { auth: 'public', loadShedding: false } }, async (request, reply) => {
    if (!authorized(request.headers.authorization)) {
      reply.header('WWW-Authenticate', 'Bearer realm="metrics"');
      throw new BastionError(HttpErrors.unauthorized, { message: 'A valid metrics token is required' });
    }
    reply.type(registry.contentType);
    return registry.metrics();
  });
}
