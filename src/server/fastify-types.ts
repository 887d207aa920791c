import type {} from '@fastify/swagger';
import type { Principal } from '../core/principal.ts';
import type { RouteRecorder } from '../observability/http-metrics.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * Required on every route: a permission such as `workflows:write`, `'authenticated'` (any
     * signed-in caller) or `'public'`. On routes with an `:org` parameter the permission is checked
     * against the caller's role in that organization.
     */
    auth?: string;
    /** Set false to keep serving the route under load shedding (liveness, metrics). Default true. */
    loadShedding?: boolean;
    /** Internal: the route's precomputed metric recorder. */
    bastionRecorder?: RouteRecorder;
    /** Internal: the route pattern serialized as JSON, for the access line. */
    bastionRouteJson?: string;
  }
  interface FastifyRequest {
    /** The authenticated caller, or null. */
    principal: Principal | null;
    /** The permissions the route was authorized with (in `:org` on tenant routes); null on public routes. */
    granted: ReadonlySet<string> | null;
    /** Internal: the access line and metric observation were written. */
    bastionFinished: boolean;
    /** Internal: performance.now() when the request arrived. */
    bastionStartedAt: number;
    /**
     * Internal: the route's config, read once in the entry hook (every read of
     * `request.routeOptions` builds a new object); null before the entry hook ran.
     */
    bastionRoute: FastifyContextConfig | null;
  }
}
