import type {
  FastifyContextConfig,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  RouteOptions,
} from 'fastify';
import fp from 'fastify-plugin';
import { BastionError, HttpErrors } from '../core/errors.ts';
import { type Authenticator, isPromiseLike, type Principal } from '../core/principal.ts';
import './fastify-types.ts';

/** The value of `config.auth` for routes anyone may call. */
export const PUBLIC = 'public';
/** The value of `config.auth` for routes any signed-in caller may use (their own account). */
export const AUTHENTICATED = 'authenticated';
/** The path parameter that makes a route tenant-scoped. */
export const ORG_PARAM = 'org';

const PERMISSION_PATTERN = /^[a-z][a-z-]*:[a-z][a-z-]*$/;

/** Options of the route-auth plugin. */
export interface RouteAuthOptions {
  /** Finds the caller; until identity is configured, nobody is authenticated (every non-public route answers 401). */
  authenticate?: Authenticator<FastifyRequest>;
  /**
   * Runs once the caller is authorized (per-caller rate limits); it may throw or reject to
   * refuse the request.
   */
  authorized?: (request: FastifyRequest, reply: FastifyReply) => void | PromiseLike<void>;
}

const nobody: Authenticator<FastifyRequest> = () => null;

/**
 * The config of the request's route: the copy the entry hook kept, else (before it ran)
 * Fastify's, which `request.routeOptions` builds anew at every read.
 */
export function routeOf(request: FastifyRequest): FastifyContextConfig {
  return request.bastionRoute ?? request.routeOptions.config;
}

/** Why a route declaration is refused, or null when it is fine. */
export function routeAuthProblem(route: Pick<RouteOptions, 'method' | 'url' | 'config'>): string | null {
  const auth = (route.config as { auth?: unknown } | undefined)?.auth;
  const name = `${[route.method].flat().join(',')} ${route.url}`;
  if (auth === undefined) {
    return `Route ${name} does not declare config.auth; set a permission (e.g. 'workflows:read') or 'public'`;
  }
  if (
    auth !== PUBLIC &&
    auth !== AUTHENTICATED &&
    (typeof auth !== 'string' || !PERMISSION_PATTERN.test(auth))
  ) {
    return `Route ${name} has config.auth ${JSON.stringify(auth)}; expected 'public', 'authenticated' or 'resource:action'`;
  }
  return null;
}

/**
 * Enforces the route declaration rule at start-up (a route without `config.auth` is a
 * programming error) and, per request, authentication and the route's permission, as soon as the
 * headers are in. On tenant routes (an `:org` parameter) the permission is looked up in the
 * caller's role in that organization, and a caller with no access gets 404, as for an organization
 * that does not exist. Public routes get no hook at all.
 */
export const routeAuth = fp<RouteAuthOptions>(
  async (app: FastifyInstance, options) => {
    const authenticate = options.authenticate ?? nobody;
    const authorized = options.authorized;
    app.decorateRequest('principal', null);
    app.decorateRequest('granted', null);

    app.addHook('onRoute', (route) => {
      const problem = routeAuthProblem(route);
      if (problem) throw new TypeError(problem);
      const permission = route.config?.auth as string;
      if (permission === PUBLIC) return;
      const tenantScoped = route.url.split('/').includes(`:${ORG_PARAM}`);
      const grant = (request: FastifyRequest, granted: ReadonlySet<string> | null): void => {
        // Not a member: the organization might as well not exist.
        if (!granted) throw new BastionError(HttpErrors.notFound);
        request.granted = granted;
        if (permission !== AUTHENTICATED && !granted.has(permission)) {
          throw new BastionError(HttpErrors.forbidden);
        }
      };
      const authorize = (request: FastifyRequest, principal: Principal | null): void | PromiseLike<void> => {
        if (!principal) throw new BastionError(HttpErrors.unauthorized);
        request.principal = principal;
        if (!tenantScoped) return grant(request, principal.permissions);
        if (!principal.permissionsIn) return grant(request, null);
        const orgId = (request.params as Record<string, string | undefined>)[ORG_PARAM] ?? '';
        return principal.permissionsIn(orgId).then((granted) => grant(request, granted));
      };
      // A callback hook, not an async one: a caller found in memory (a cached token) is let
      // through without a promise.
      const afterwards = (request: FastifyRequest, reply: FastifyReply) => authorized?.(request, reply);
      const check = (request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void) => {
        try {
          const found = request.principal ?? authenticate(request);
          const granted = isPromiseLike(found)
            ? found.then((principal) => authorize(request, principal))
            : authorize(request, found);
          const outcome = isPromiseLike(granted)
            ? granted.then(() => afterwards(request, reply))
            : afterwards(request, reply);
          if (isPromiseLike(outcome)) outcome.then(() => done(), done);
          else done();
        } catch (error) {
          done(error as Error);
        }
      };
      // Before the body is read: an anonymous caller learns nothing about the route's schema or
      // limits (no 400/413/415 ahead of the 401), and costs no body parsing.
      route.onRequest = [...[route.onRequest ?? []].flat(), check];
    });
  },
  { name: 'bastion-route-auth', fastify: '5.x' },
);
