import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { BastionConfig } from '../config/schema.ts';
import { BastionError, type ErrorDefinition } from '../core/errors.ts';
import { errorBody } from '../server/error-handler.ts';
import { Cors } from './cors.ts';
import { ProtectionErrors } from './errors.ts';
import { type HeaderOverrides, type HeaderProfile, type HeaderSet, SecurityHeaders } from './headers.ts';
import type { IpRules } from './ip-rules.ts';
import { isValidHost, jsonShapeProblem, parameterCount } from './limits.ts';
import type { SecurityEvents } from './security-events.ts';
import '../server/fastify-types.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Security headers of the route: a profile, or changes to the API set (null leaves a header out). */
    headers?: HeaderProfile | HeaderOverrides;
    /** Internal: the route's precomputed security headers. */
    bastionHeaders?: HeaderSet;
  }
}

/** Options of the protection plugin. */
export interface ProtectionOptions {
  config: BastionConfig;
  ipRules: IpRules;
  events: SecurityEvents;
}

// Load balancers probe these over plain HTTP; they reveal nothing.
const HTTPS_EXEMPT = new Set(['/health/live', '/health/ready']);

/**
 * The protection every request passes before routing work starts, in one `onRequest` hook (a
 * hook costs every request): limits on the URL, headers and parameters, IP deny rules and
 * bans, the HTTPS policy, CORS (preflights are answered here) and the route's precomputed
 * security headers. JSON bodies are checked for depth and size as they are parsed.
 */
export const protection = fp<ProtectionOptions>(
  async (app: FastifyInstance, { config, ipRules, events }) => {
    const headers = new SecurityHeaders(config);
    const cors = new Cors(config);
    const limits = config.protection.limits;
    const https = httpsMode(config);
    const apiHeaders = headers.profile('api');

    app.addHook('onRoute', (route) => {
      route.config = {
        ...route.config,
        bastionHeaders: headers.forRoute(route.url ?? route.path, route.config?.headers),
      };
    });

    // The app's HTTP server refuses larger headers itself (431) and times out slow senders (408).
    app.server.maxHeadersCount = limits.maxHeaderCount + 1;

    const parseJson = app.getDefaultJsonParser('error', 'error');
    app.removeContentTypeParser('application/json');
    app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
      parseJson(request, body as string, (error, value) => {
        if (error) return done(error, undefined);
        const problem = jsonShapeProblem(value, limits.maxJsonDepth, limits.maxJsonKeys);
        if (problem) return done(new BastionError(problem), undefined);
        done(null, value);
      });
    });

    const refuse = (request: FastifyRequest, reply: FastifyReply, definition: ErrorDefinition): void => {
      reply.code(definition.status).send(errorBody(definition, request.id));
    };

    app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
      reply.headers(request.routeOptions.config.bastionHeaders ?? apiHeaders);

      if (request.url.length > limits.maxUrlLength)
        return refuse(request, reply, ProtectionErrors.uriTooLong);
      if (request.raw.rawHeaders.length > limits.maxHeaderCount * 2) {
        return refuse(request, reply, ProtectionErrors.tooManyHeaders);
      }

      const decision = ipRules.decide(request.ip);
      if (decision?.action === 'deny') {
        events.blocked(request, decision.rule);
        return refuse(request, reply, ProtectionErrors.requestBlocked);
      }

      if (https !== 'off' && request.protocol !== 'https' && !HTTPS_EXEMPT.has(request.url)) {
        const host = request.host;
        if ((request.method === 'GET' || request.method === 'HEAD') && https === 'redirect') {
          if (!isValidHost(host)) return refuse(request, reply, ProtectionErrors.invalidHost);
          reply.code(308).header('location', `https://${host}${request.url}`).send();
          return;
        }
        return refuse(request, reply, ProtectionErrors.httpsRequired);
      }

      if (cors.enabled) {
        const origin = request.headers.origin;
        if (origin === undefined) reply.header('vary', 'Origin');
        else if (
          request.method === 'OPTIONS' &&
          request.headers['access-control-request-method'] !== undefined
        ) {
          reply.headers(cors.preflight(origin)).code(204).send();
          return;
        } else reply.headers(cors.response(origin));
      }

      if (parameterCount(request.query) > limits.maxParameters) {
        return refuse(request, reply, ProtectionErrors.tooManyParameters);
      }
      done();
    });
  },
  { name: 'bastion-protection', fastify: '5.x', dependencies: ['bastion-observability'] },
);

/** The HTTPS policy in force: `auto` redirects in production and is off elsewhere. */
export function httpsMode(config: BastionConfig): 'redirect' | 'refuse' | 'off' {
  const mode = config.protection.https;
  if (mode !== 'auto') return mode;
  return config.env === 'production' ? 'redirect' : 'off';
}
