import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
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

/** What {@link RequestProtection} needs. */
export interface ProtectionOptions {
  config: BastionConfig;
  ipRules: IpRules;
  events: SecurityEvents;
}

// Load balancers probe these over plain HTTP; they reveal nothing.
const HTTPS_EXEMPT = new Set(['/health/live', '/health/ready']);

/**
 * The protection every request passes before routing work starts: limits on the URL, headers
 * and parameters, IP deny rules and bans, the HTTPS policy, CORS (preflights are answered here)
 * and the route's precomputed security headers. `admit` runs inside the one entry hook every
 * request passes (a hook of its own would cost every request); JSON bodies are checked for
 * depth and size as they are parsed.
 */
export class RequestProtection {
  readonly #ipRules: IpRules;
  readonly #events: SecurityEvents;
  readonly #headers: SecurityHeaders;
  readonly #apiHeaders: HeaderSet;
  readonly #cors: Cors;
  readonly #limits: BastionConfig['protection']['limits'];
  readonly #https: 'redirect' | 'refuse' | 'off';

  constructor({ config, ipRules, events }: ProtectionOptions) {
    this.#ipRules = ipRules;
    this.#events = events;
    this.#headers = new SecurityHeaders(config);
    this.#apiHeaders = this.#headers.profile('api');
    this.#cors = new Cors(config);
    this.#limits = config.protection.limits;
    this.#https = httpsMode(config);
  }

  /** Precomputes each route's headers and installs the JSON limits; call before routes are added. */
  install(app: FastifyInstance): void {
    const headers = this.#headers;
    const limits = this.#limits;
    app.addHook('onRoute', (route) => {
      route.config = {
        ...route.config,
        bastionHeaders: headers.forRoute(route.url ?? route.path, route.config?.headers),
      };
    });
    // The HTTP server refuses larger headers itself (431) and times out slow senders (408); past
    // this count Node would drop headers silently, so one more is kept to be counted here.
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
  }

  /** Sets the security headers of the request's route (every response carries them, refusals too). */
  setHeaders(request: FastifyRequest, reply: FastifyReply): void {
    reply.headers(request.routeOptions.config.bastionHeaders ?? this.#apiHeaders);
  }

  /** Checks the request; answers it and returns false when it is refused. */
  admit(request: FastifyRequest, reply: FastifyReply): boolean {
    const limits = this.#limits;
    if (request.url.length > limits.maxUrlLength) return refuse(request, reply, ProtectionErrors.uriTooLong);
    if (request.raw.rawHeaders.length > limits.maxHeaderCount * 2) {
      return refuse(request, reply, ProtectionErrors.tooManyHeaders);
    }

    const decision = this.#ipRules.decide(request.ip);
    if (decision?.action === 'deny') {
      this.#events.blocked(request, decision.rule);
      return refuse(request, reply, ProtectionErrors.requestBlocked);
    }

    if (this.#https !== 'off' && request.protocol !== 'https' && !HTTPS_EXEMPT.has(request.url)) {
      if ((request.method === 'GET' || request.method === 'HEAD') && this.#https === 'redirect') {
        const host = request.host;
        if (!isValidHost(host)) return refuse(request, reply, ProtectionErrors.invalidHost);
        reply.code(308).header('location', `https://${host}${request.url}`).send();
        return false;
      }
      return refuse(request, reply, ProtectionErrors.httpsRequired);
    }

    const cors = this.#cors;
    if (cors.enabled) {
      const origin = request.headers.origin;
      if (origin === undefined) reply.header('vary', 'Origin');
      else if (
        request.method === 'OPTIONS' &&
        request.headers['access-control-request-method'] !== undefined
      ) {
        reply.headers(cors.preflight(origin)).code(204).send();
        return false;
      } else reply.headers(cors.response(origin));
    }

    if (parameterCount(request.query) > limits.maxParameters) {
      return refuse(request, reply, ProtectionErrors.tooManyParameters);
    }
    return true;
  }
}

function refuse(request: FastifyRequest, reply: FastifyReply, definition: ErrorDefinition): false {
  reply.code(definition.status).send(errorBody(definition, request.id));
  return false;
}

/** The HTTPS policy in force: `auto` redirects in production and is off elsewhere. */
export function httpsMode(config: BastionConfig): 'redirect' | 'refuse' | 'off' {
  const mode = config.protection.https;
  if (mode !== 'auto') return mode;
  return config.env === 'production' ? 'redirect' : 'off';
}
