/**
 * Stage (c): what a careful team would assemble from popular Fastify plugins to get roughly what
 * Bastion gives: security headers, CORS, rate limiting, a log line and a latency histogram per
 * request, and JWT verification.
 */
import { createSecretKey } from 'node:crypto';
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import Fastify, { LogController } from 'fastify';
import { jwtVerify } from 'jose';
import pino from 'pino';
import { Histogram, Registry } from 'prom-client';
import {
  ALLOWED_ORIGIN,
  announceReady,
  bearerToken,
  exitOnSignal,
  failStartup,
  JWT_AUDIENCE,
  JWT_ISSUER,
  PEER_LOG_DESTINATION,
  portOf,
  ROUTE_PATH,
  readJwtSecret,
} from './shared.ts';

async function main(): Promise<void> {
  // A KeyObject made once: handing jose the raw bytes re-imports the key on every request, which
  // measured about half the throughput of this stage's JWT step. Peers get the fast path.
  const secret = createSecretKey(readJwtSecret());
  const registry = new Registry();
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration in seconds',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });

  const app = Fastify({
    logger: { level: 'info', stream: pino.destination(PEER_LOG_DESTINATION) },
    // Fastify logs two lines per request by default; pino-http (stage d) logs one. The line is
    // written in onResponse below so both peer stages pay for exactly one serialised line.
    logController: new LogController({ disableRequestLogging: true }),
  });

  await app.register(helmet);
  await app.register(cors, { origin: [ALLOWED_ORIGIN] });
  // In memory, with a ceiling the benchmark can never reach: we measure the bookkeeping, not 429s.
  await app.register(rateLimit, { max: 1e9, timeWindow: '1 minute' });

  app.addHook('preHandler', async (request, reply) => {
    const token = bearerToken(request.headers.authorization);
    if (token === undefined) {
      return reply.code(401).send({ error: 'missing bearer token' });
    }
    try {
      await jwtVerify(token, secret, { algorithms: ['HS256'], issuer: JWT_ISSUER, audience: JWT_AUDIENCE });
    } catch {
      return reply.code(401).send({ error: 'invalid token' });
    }
  });

  app.addHook('onResponse', async (request, reply) => {
    const status = String(reply.statusCode);
    duration.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status },
      reply.elapsedTime / 1000,
    );
    request.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed');
  });

  app.get(ROUTE_PATH, async () => ({ hello: 'world' }));

  await app.listen({ host: '127.0.0.1', port: 0 });
  exitOnSignal(() => app.close());
  announceReady(portOf(app.server.address()));
}

main().catch(failStartup);
