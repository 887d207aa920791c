import { defineError } from '../../core/errors.ts';

/** Errors of `GET /ws` answered before the upgrade (plain HTTP). */
export const LiveEventErrors = {
  tokenInUrl: defineError(
    'BASTION_ERR_TOKEN_IN_URL',
    400,
    'token_in_url',
    'Tokens are never accepted in the URL: send it in Sec-WebSocket-Protocol or the first message',
  ),
  upgradeRequired: defineError(
    'BASTION_ERR_UPGRADE_REQUIRED',
    426,
    'upgrade_required',
    'GET /ws is a WebSocket endpoint',
  ),
};

/**
 * Close codes of `/ws` once upgraded. The 4xxx ones mirror the HTTP status a plain request would
 * have received, so clients can tell "sign in again" (4401) from "back off" (4429).
 */
export const LiveCloseCodes = {
  /** The server is shutting down (RFC 6455 "going away"); reconnect elsewhere or later. */
  shutdown: 1001,
  /** A client message was not valid JSON. */
  invalidJson: 1007,
  /** The client sent more messages per second than allowed. */
  rateLimited: 1008,
  /** Authentication could not be checked right now (shared state down); retry later. */
  unavailable: 1013,
  /** A bearer token was offered without the `bastion.v1` subprotocol. */
  badRequest: 4400,
  /** Missing, invalid, expired or revoked access token. */
  unauthorized: 4401,
  /** No valid `{"type":"auth"}` message within the auth timeout. */
  authTimeout: 4408,
  /** The user already holds the allowed number of connections on this instance. */
  tooManyConnections: 4429,
} as const;

/** Why a connection ended: the `reason` label of `bastion_ws_disconnects_total`. */
export type DisconnectReason =
  | 'client'
  | 'auth_failed'
  | 'auth_timeout'
  | 'token_expired'
  | 'rate_limited'
  | 'too_many_connections'
  | 'backpressure'
  | 'heartbeat'
  | 'shutdown'
  | 'error';

/** Every disconnect reason, so each label child exists (at 0) from start-up. */
export const DISCONNECT_REASONS: readonly DisconnectReason[] = [
  'client',
  'auth_failed',
  'auth_timeout',
  'token_expired',
  'rate_limited',
  'too_many_connections',
  'backpressure',
  'heartbeat',
  'shutdown',
  'error',
];
