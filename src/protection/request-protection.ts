import { parse as parseQueryString } from 'node:querystring';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { BastionConfig } from '../config/schema.ts';
import { BastionError, type ErrorDefinition, HttpErrors } from '../core/errors.ts';
import { clientKey } from '../core/ip-address.ts';
import { isPromiseLike } from '../core/principal.ts';
import { errorBody } from '../server/error-handler.ts';
import { routeOf } from '../server/route-auth.ts';
import { Cors } from './cors.ts';
import { ProtectionErrors } from './errors.ts';
import { type HeaderOverrides, type HeaderProfile, type HeaderSet, SecurityHeaders } from './headers.ts';
import type { IpRules } from './ip-rules.ts';
import { isValidHost, jsonShapeProblem, parameterCount } from './limits.ts';
import type { Limiter, RateDecision, RateLimitRule, RateLimitStatus, RateLimits } from './rate-limits.ts';
import type { SecurityEvents } from './security-events.ts';
import type { ThreatScores } from './threat-scores.ts';
import '../server/fastify-types.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The route's own rate limit, counted per client address (`per: 'ip'`, default) or per
     * signed-in caller (`per: 'principal'`); `false` exempts the route from every rate limit.
     */
    rateLimit?: (RateLimitRule & { per?: 'ip' | 'principal' }) | false;
    /** Internal: the route's own limiter. */
    bastionRouteLimiter?: { limiter: Limiter; per: 'ip' | 'principal' };
    /** Security headers of the route: a profile, or changes to the API set (null leaves a header out). */
    headers?: HeaderProfile | HeaderOverrides;
    /** Internal: the route's precomputed security headers. */
    bastionHeaders?: HeaderSet;
  }
  interface FastifyRequest {
    /** Internal: the tightest rate limit counted for the request so far (its RateLimit headers). */
    bastionRateLimit: RateDecision | null;
  }
}

/** What {@link RequestProtection} needs. */
export interface ProtectionOptions {
  config: BastionConfig;
  ipRules: IpRules;
  events: SecurityEvents;
  rateLimits: RateLimits;
  threat: ThreatScores;
}

// The identity endpoints an attacker hammers: a stricter limit per address by default.
const IDENTITY_LIMITED = /^\/auth\/(?:console\/)?(?:login|refresh|mfa\/|password|email)/;

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
  readonly #rateLimits: RateLimits;
  readonly #rateConfig: BastionConfig['protection']['rateLimit'];
  readonly #ipLimiter: Limiter | null;
  readonly #principalLimiter: Limiter | null;

  readonly #threat: ThreatScores;

  constructor({ config, ipRules, events, rateLimits, threat }: ProtectionOptions) {
    this.#threat = threat;
    this.#rateLimits = rateLimits;
    this.#rateConfig = config.protection.rateLimit;
    const enabled = this.#rateConfig.enabled;
    this.#ipLimiter = enabled ? rateLimits.limiter('ip', this.#rateConfig.ip) : null;
    this.#principalLimiter = enabled ? rateLimits.limiter('principal', this.#rateConfig.principal) : null;
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
    const rate = this.#rateConfig;
    app.decorateRequest('bastionRateLimit', null);
    app.addHook('onRoute', (route) => {
      const url = route.url ?? route.path;
      const own = route.config?.rateLimit;
      const methods = [route.method].flat();
      let routeLimiter: { limiter: Limiter; per: 'ip' | 'principal' } | undefined;
      if (rate.enabled && own) {
        routeLimiter = {
          limiter: this.#rateLimits.limiter(`route:${methods.join(',')}:${url}`, own),
          per: own.per ?? 'ip',
        };
      } else if (
        rate.enabled &&
        own === undefined &&
        methods.includes('POST') &&
        IDENTITY_LIMITED.test(url)
      ) {
        routeLimiter = { limiter: this.#rateLimits.limiter(`route:POST:${url}`, rate.identity), per: 'ip' };
      }
      route.config = {
        ...route.config,
        bastionHeaders: headers.forRoute(url, route.config?.headers),
        ...(routeLimiter ? { bastionRouteLimiter: routeLimiter } : {}),
      };
    });
    // The HTTP server refuses larger headers itself (431) and times out slow senders (408); past
    // this count Node would drop headers silently, so one more is kept to be counted here.
    app.server.maxHeadersCount = limits.maxHeaderCount + 1;

    // Form bodies are parsed (so they are inspected like JSON ones), within the parameter limit.
    app.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string' },
      (_request, body, done) => {
        const form = parseQueryString(body as string, '&', '=', { maxKeys: limits.maxParameters + 1 });
        if (parameterCount(form) > limits.maxParameters) {
          return done(new BastionError(ProtectionErrors.tooManyParameters), undefined);
        }
        done(null, { ...form });
      },
    );

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
    reply.headers(routeOf(request).bastionHeaders ?? this.#apiHeaders);
  }

  /** Checks the request; answers it and returns (or resolves to) false when it is refused. */
  admit(request: FastifyRequest, reply: FastifyReply): boolean | Promise<boolean> {
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
    return this.#limitAddress(request, reply);
  }

  /** The per-address limits: every route's, and the route's own when it counts per address. */
  #limitAddress(request: FastifyRequest, reply: FastifyReply): boolean | Promise<boolean> {
    const config = routeOf(request);
    if (this.#ipLimiter === null || config.rateLimit === false) return true;
    const key = clientKey(request.ip);
    const own = config.bastionRouteLimiter;
    const everyRoute = this.#rateLimits.consume(this.#ipLimiter, key, 'ip');
    const routeOwn = own?.per === 'ip' ? this.#rateLimits.consume(own.limiter, key, 'route') : null;
    // Counted in this process, the decisions are at hand: no promise on the way in.
    if (isPromiseLike(everyRoute) || isPromiseLike(routeOwn)) {
      return Promise.all([everyRoute, routeOwn]).then(([first, second]) =>
        this.#apply(request, reply, first, second, true),
      );
    }
    return this.#apply(request, reply, everyRoute, routeOwn, true);
  }

  /**
   * The per-caller limits, once the caller is known (route authorization calls this): every
   * route's per-principal limit, and the route's own when it counts per principal.
   */
  limitPrincipal(request: FastifyRequest, reply: FastifyReply): void | Promise<void> {
    const config = routeOf(request);
    const principal = request.principal;
    if (this.#principalLimiter === null || config.rateLimit === false || !principal) return;
    const key = `${principal.kind}:${principal.id}`;
    const own = config.bastionRouteLimiter;
    const everyRoute = this.#rateLimits.consume(this.#principalLimiter, key, 'principal');
    const routeOwn = own?.per === 'principal' ? this.#rateLimits.consume(own.limiter, key, 'route') : null;
    if (isPromiseLike(everyRoute) || isPromiseLike(routeOwn)) {
      return Promise.all([everyRoute, routeOwn]).then(([first, second]) =>
        this.#enforce(request, reply, first, second),
      );
    }
    this.#enforce(request, reply, everyRoute, routeOwn);
  }

  #enforce(
    request: FastifyRequest,
    reply: FastifyReply,
    first: RateDecision,
    second: RateDecision | null,
  ): void {
    if (!this.#apply(request, reply, first, second, false)) {
      throw new BastionError(HttpErrors.tooManyRequests, {
        headers: { 'retry-after': String(retryAfterOf(first, second)) },
      });
    }
  }

  /**
   * Sets the RateLimit headers of the tightest limit counted for the request so far and, when
   * one is exhausted, answers 429 with Retry-After (unless `answer` is false: the caller throws
   * instead). True when allowed.
   */
  #apply(
    request: FastifyRequest,
    reply: FastifyReply,
    first: RateDecision,
    second: RateDecision | null,
    answer: boolean,
  ): boolean {
    const refused = !first.allowed ? first : second !== null && !second.allowed ? second : null;
    let shown = refused ?? first;
    if (refused === null) {
      if (second !== null && second.remaining < shown.remaining) shown = second;
      const earlier = request.bastionRateLimit;
      if (earlier !== null && earlier.remaining < shown.remaining) shown = earlier;
    }
    request.bastionRateLimit = shown;
    reply.header('ratelimit-limit', String(shown.limit));
    reply.header('ratelimit-remaining', String(shown.remaining));
    reply.header('ratelimit-reset', String(shown.resetSeconds));
    if (refused === null) return true;
    this.#events.rateLimited(request);
    this.#threat.add(request.ip, 'rate_limited');
    if (answer) {
      reply
        .code(429)
        .header('retry-after', String(retryAfterOf(first, second)))
        .send(errorBody(HttpErrors.tooManyRequests, request.id));
    }
    return false;
  }

  /** For `/health/detailed`. */
  rateLimitStatus(): RateLimitStatus & { enabled: boolean } {
    return { enabled: this.#rateConfig.enabled, ...this.#rateLimits.status() };
  }
}

/** Seconds until every exhausted limit of the two has reset. */
function retryAfterOf(first: RateDecision, second: RateDecision | null): number {
  const firstWait = first.allowed ? 0 : first.resetSeconds;
  const secondWait = second === null || second.allowed ? 0 : second.resetSeconds;
  return Math.max(1, firstWait, secondWait);
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
