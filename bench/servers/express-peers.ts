/**
 * Stage (d): the same feature set as stage (c) assembled from the popular Express middleware:
 * helmet, cors, express-rate-limit, pino-http, a prom-client histogram and jsonwebtoken.
 */
import { createSecretKey } from 'node:crypto';
import cors from 'cors';
import express from 'express';
import rateLimit from 'express-rate-limit';
import helmet from 'helmet';
import jwt from 'jsonwebtoken';
import pino from 'pino';
import { pinoHttp } from 'pino-http';
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
  // A KeyObject made once: given a raw secret, jsonwebtoken first tries (and fails) to parse it as
  // a public key on every call, which cut this stage's throughput several-fold. Peers get the fast path.
  const secret = createSecretKey(readJwtSecret());
  const registry = new Registry();
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration in seconds',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });

  const app = express();
  // pino-http logs one line per request when the response finishes, like stage (c).
  app.use(pinoHttp({ logger: pino({ level: 'info' }, pino.destination(PEER_LOG_DESTINATION)) }));
  app.use((req, res, next) => {
    const start = process.hrtime.bigint();
    res.on('finish', () => {
      // req.route is only set once a route matched; it is still set when 'finish' fires.
      const route: unknown = req.route;
      const path =
        typeof route === 'object' && route !== null && 'path' in route ? String(route.path) : 'unmatched';
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      duration.observe({ method: req.method, route: path, status: String(res.statusCode) }, seconds);
    });
    next();
  });
  app.use(helmet());
  app.use(cors({ origin: [ALLOWED_ORIGIN] }));
  // In memory, with a ceiling the benchmark can never reach: we measure the bookkeeping, not 429s.
  app.use(rateLimit({ windowMs: 60_000, limit: 1e9, standardHeaders: 'draft-8', legacyHeaders: false }));
  app.use((req, res, next) => {
    const token = bearerToken(req.headers.authorization);
    if (token === undefined) {
      res.status(401).json({ error: 'missing bearer token' });
      return;
    }
    try {
      jwt.verify(token, secret, { algorithms: ['HS256'], issuer: JWT_ISSUER, audience: JWT_AUDIENCE });
    } catch {
      res.status(401).json({ error: 'invalid token' });
      return;
    }
    next();
  });

  app.get(ROUTE_PATH, (_req, res) => {
    res.json({ hello: 'world' });
  });

  const server = await new Promise<ReturnType<typeof app.listen>>((resolve, reject) => {
    const listening = app.listen(0, '127.0.0.1', (error?: Error) => {
      if (error) reject(error);
      else resolve(listening);
    });
  });
  exitOnSignal(
    () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // Keep-alive sockets from the load generator would otherwise hold close() open.
        server.closeAllConnections();
      }),
  );
  announceReady(portOf(server.address()));
}

main().catch(failStartup);
