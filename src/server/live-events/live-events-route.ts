import { performance } from 'node:perf_hooks';
import websocket from '@fastify/websocket';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BastionError } from '../../core/errors.ts';
import { requestContext } from '../../identity/audit-log.ts';
import type { IdentityService } from '../../identity/service.ts';
import type { HttpMetrics } from '../../observability/http-metrics.ts';
import type { Services } from '../services.ts';
import { LiveCloseCodes, LiveEventErrors } from './errors.ts';
import { type LiveAuthenticator, LiveConnection } from './live-connection.ts';
import { routeUpgrades } from './upgrade-router.ts';

/** Where the stream is served. */
const PATH = '/ws';
/** The subprotocol the server selects; the only one it ever echoes. */
export const LIVE_PROTOCOL = 'bastion.v1';
/** Prefix of the subprotocol that carries the access token (`bearer.<token>`). */
const BEARER_PROTOCOL = 'bearer.';
/** Query parameters that would put a credential in the URL (and so in logs and proxies). */
const TOKEN_PARAMETER = /^(access[_-]?token|token|bearer|jwt|auth(orization)?|api[_-]?key)$/i;
/** Client messages are tiny (auth, ping); anything larger is refused by ws with 1009. */
const MAX_PAYLOAD_BYTES = 16 * 1024;
/** How long shutdown waits for clients to answer the 1001 close. */
const SHUTDOWN_GRACE_MS = 1000;

/**
 * Serves `GET /ws`, the live-event stream. Authentication happens in the handshake
 * (`Sec-WebSocket-Protocol: bastion.v1, bearer.<access token>`) or in a first message
 * `{"type":"auth","token":"…"}`, because browsers cannot set headers on a WebSocket; a token in
 * the query string is refused with 400 before the upgrade. @fastify/websocket is registered in a
 * context of its own holding only this route, so no other route pays for its hooks.
 */
export async function registerLiveEventsRoute(app: FastifyInstance, services: Services): Promise<void> {
  const { config, liveEvents, clock } = services;
  const authenticate = liveAuthenticator(services.identity);
  const upgrades = routeUpgrades(app, PATH, config.server.keepAliveTimeoutMs);
  await app.register(async (scope) => {
    // Added before @fastify/websocket's own preClose (which closes without a code), so clients
    // are told 1001 `shutdown`.
    scope.addHook('preClose', async () => liveEvents.shutdown(SHUTDOWN_GRACE_MS));
    await scope.register(websocket, {
      options: {
        server: upgrades,
        maxPayload: MAX_PAYLOAD_BYTES,
        handleProtocols: (protocols) => (protocols.has(LIVE_PROTOCOL) ? LIVE_PROTOCOL : false),
      },
      // A broken client frame is the client's fault: drop the socket without an error log.
      errorHandler: (_error, socket) => socket.terminate(),
    });
    scope.route({
      method: 'GET',
      url: PATH,
      config: { auth: 'public' },
      schema: { hide: true },
      preValidation: refuseTokenInUrl,
      handler: async () => {
        throw new BastionError(LiveEventErrors.upgradeRequired);
      },
      wsHandler: (socket, request) => {
        upgraded(request, services.httpMetrics);
        const connection = new LiveConnection({
          socket,
          hub: liveEvents,
          authenticate: (token) => authenticate(token, request),
          settings: config.websocket,
          clock,
          logger: request.log,
        });
        const bearer = bearerProtocolOf(request.headers['sec-websocket-protocol']);
        if (bearer === null) return;
        if (socket.protocol !== LIVE_PROTOCOL) {
          connection.end(LiveCloseCodes.badRequest, `offer the ${LIVE_PROTOCOL} subprotocol`, 'auth_failed');
        } else {
          void connection.authenticate(bearer);
        }
      },
    });
  });
}

/**
 * Ends the HTTP side of an upgrade for observability: it finished with the 101, but a hijacked
 * response never emits 'finish', so the in-flight gauge would otherwise keep it forever.
 */
function upgraded(request: FastifyRequest, metrics: HttpMetrics): void {
  if (request.bastionFinished) return;
  request.bastionFinished = true;
  metrics.active.dec();
  const seconds = (performance.now() - request.bastionStartedAt) / 1000;
  request.bastionRoute?.bastionRecorder?.observe(101, seconds, 'GET');
}

/** Refuses (400) an upgrade whose URL carries anything that looks like a credential. */
async function refuseTokenInUrl(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
  const query = request.query;
  if (typeof query !== 'object' || query === null) return;
  for (const name of Object.keys(query)) {
    if (TOKEN_PARAMETER.test(name)) throw new BastionError(LiveEventErrors.tokenInUrl);
  }
}

/** The token of a `bearer.<token>` subprotocol, or null. */
function bearerProtocolOf(header: string | string[] | undefined): string | null {
  if (typeof header !== 'string') return null;
  for (const part of header.split(',')) {
    const protocol = part.trim();
    if (protocol.startsWith(BEARER_PROTOCOL) && protocol.length > BEARER_PROTOCOL.length) {
      return protocol.slice(BEARER_PROTOCOL.length);
    }
  }
  return null;
}

/** Identity's check of a user access token (API keys are refused: `/ws` is for console users). */
function liveAuthenticator(
  identity: IdentityService,
): (token: string, request: FastifyRequest) => ReturnType<LiveAuthenticator> {
  return async (token, request) => {
    if (token.startsWith('bst_')) return null;
    const principal = await identity.authenticate({ bearer: token, apiKey: null }, () =>
      requestContext(request),
    );
    if (principal === null || principal.kind !== 'user') return null;
    // Already verified and cached by `authenticate`: a map lookup for the expiry.
    const claims = await identity.tokens.verify(token);
    if (claims === null || claims.sub !== principal.id) return null;
    return {
      userId: principal.id,
      sessionId: claims.sid,
      permissions: principal.permissions,
      expiresAt: claims.exp * 1000,
    };
  };
}
