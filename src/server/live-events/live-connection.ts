import { performance } from 'node:perf_hooks';
import type { FastifyBaseLogger } from 'fastify';
import type { RawData, WebSocket } from 'ws';
import type { BastionConfig } from '../../config/schema.ts';
import type { Clock } from '../../core/clock.ts';
import { type DisconnectReason, LiveCloseCodes } from './errors.ts';
import { LIVE_EVENT_PERMISSIONS, type LiveEventHub, type LiveSubscriber } from './live-event-hub.ts';

/** Who an access token belongs to, as the connection needs it. */
export interface LiveIdentity {
  userId: string;
  sessionId: string;
  /** Platform permissions. */
  permissions: ReadonlySet<string>;
  /** When the token expires (epoch ms). */
  expiresAt: number;
}

/** Checks an access token: its identity, null when refused; throws when it cannot be checked now. */
export type LiveAuthenticator = (token: string) => Promise<LiveIdentity | null>;

/** Options of {@link LiveConnection}. */
export interface LiveConnectionOptions {
  socket: WebSocket;
  hub: LiveEventHub;
  authenticate: LiveAuthenticator;
  settings: BastionConfig['websocket'];
  clock: Clock;
  logger: FastifyBaseLogger;
}

/** A closing socket whose peer does not answer the close frame is dropped after this long. */
const CLOSE_GRACE_MS = 2000;
/** setTimeout's largest delay; a token living longer is re-armed at its next re-check anyway. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const NO_PERMISSIONS: ReadonlySet<string> = new Set();
const PONG = JSON.stringify({ type: 'pong' });
/** A shared, already encoded frame is sent as text, not binary. */
const TEXT = { binary: false } as const;
const GATING = [...new Set(Object.values(LIVE_EVENT_PERMISSIONS))].sort();

/**
 * One `/ws` connection: authentication (subprotocol token or first message, within the auth
 * timeout), re-authentication on a fresh `{"type":"auth"}`, closing when the token expires,
 * heartbeats (which also re-check the token, so a disabled user or a missed revocation ends the
 * connection), a per-second message limit, and backpressure: a client that does not read is
 * dropped instead of having events buffered for it without bound.
 */
export class LiveConnection implements LiveSubscriber {
  userId: string | null = null;
  sessionId: string | null = null;
  permissions: ReadonlySet<string> = NO_PERMISSIONS;
  readonly closed: Promise<void>;
  readonly #options: LiveConnectionOptions;
  readonly #socket: WebSocket;
  readonly #openedAt = performance.now();
  #token: string | null = null;
  #expiresAt = 0;
  #reason: DisconnectReason | null = null;
  #authenticating = false;
  #alive = true;
  #windowStart = 0;
  #windowCount = 0;
  #authTimer: NodeJS.Timeout | null;
  #expiryTimer: NodeJS.Timeout | null = null;
  #graceTimer: NodeJS.Timeout | null = null;
  readonly #heartbeat: NodeJS.Timeout;
  #resolveClosed: () => void = () => {};

  constructor(options: LiveConnectionOptions) {
    this.#options = options;
    this.#socket = options.socket;
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    options.hub.attach(this);
    options.hub.metrics.connected();
    this.#socket.on('message', (data) => this.#onMessage(data));
    this.#socket.on('pong', () => {
      this.#alive = true;
    });
    this.#socket.on('error', () => {
      this.#reason ??= 'error';
    });
    this.#socket.on('close', () => this.#onClose());
    this.#authTimer = setTimeout(() => {
      this.end(LiveCloseCodes.authTimeout, 'authentication timeout', 'auth_timeout');
    }, options.settings.authTimeoutMs);
    this.#authTimer.unref();
    this.#heartbeat = setInterval(() => this.#beat(), options.settings.heartbeatMs);
    this.#heartbeat.unref();
  }

  /** Authenticates (or re-authenticates) with an access token; closes 4401 when it is refused. */
  async authenticate(token: string): Promise<void> {
    // One check at a time: a second auth message sent meanwhile is ignored (but rate-counted).
    if (this.#authenticating || this.#reason !== null) return;
    this.#authenticating = true;
    let identity: LiveIdentity | null;
    try {
      identity = await this.#options.authenticate(token);
    } catch (error) {
      this.#options.logger.warn({ err: error }, 'cannot check a /ws access token');
      this.end(LiveCloseCodes.unavailable, 'authentication unavailable', 'error');
      return;
    } finally {
      this.#authenticating = false;
    }
    if (this.#reason !== null) return;
    // One connection, one user: a token of someone else is not a refresh.
    if (identity === null || (this.userId !== null && identity.userId !== this.userId)) {
      this.end(LiveCloseCodes.unauthorized, 'authentication failed', 'auth_failed');
      return;
    }
    // Identity allows a few seconds of clock skew after `exp`; a stream has no reason to.
    if (identity.expiresAt <= this.#options.clock.now()) {
      this.end(LiveCloseCodes.unauthorized, 'token expired', 'token_expired');
      return;
    }
    const first = this.userId === null;
    this.userId = identity.userId;
    if (first && !this.#options.hub.admit(this)) {
      this.end(LiveCloseCodes.tooManyConnections, 'too many connections', 'too_many_connections');
      return;
    }
    this.#accept(token, identity);
    this.#send(
      JSON.stringify({
        type: 'welcome',
        user_id: identity.userId,
        permissions: GATING.filter((permission) => identity.permissions.has(permission)),
      }),
    );
  }

  deliver(frame: Buffer): void {
    if (this.#reason !== null) return;
    // Checked before queueing more: what one slow client can hold is bounded by the limit plus
    // one frame, whatever the event rate.
    if (this.#socket.bufferedAmount > this.#options.settings.maxBufferedBytes) {
      this.#drop('backpressure');
      return;
    }
    if (this.#socket.readyState === this.#socket.OPEN) this.#socket.send(frame, TEXT);
  }

  end(code: number, text: string, reason: DisconnectReason): void {
    if (this.#reason !== null) return;
    this.#reason = reason;
    this.#stopTimers();
    this.#socket.close(code, text);
    this.#graceTimer = setTimeout(() => this.#socket.terminate(), CLOSE_GRACE_MS);
    this.#graceTimer.unref();
  }

  /** Drops the socket without a closing handshake (it could not be delivered anyway). */
  #drop(reason: DisconnectReason): void {
    if (this.#reason !== null) return;
    this.#reason = reason;
    this.#stopTimers();
    this.#socket.terminate();
  }

  #accept(token: string, identity: LiveIdentity): void {
    this.#token = token;
    this.sessionId = identity.sessionId;
    this.permissions = identity.permissions;
    this.#expiresAt = identity.expiresAt;
    if (this.#authTimer) clearTimeout(this.#authTimer);
    this.#authTimer = null;
    if (this.#expiryTimer) clearTimeout(this.#expiryTimer);
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, identity.expiresAt - this.#options.clock.now()));
    this.#expiryTimer = setTimeout(() => {
      this.end(LiveCloseCodes.unauthorized, 'token expired', 'token_expired');
    }, delay);
    this.#expiryTimer.unref();
  }

  #onMessage(data: RawData): void {
    if (this.#reason !== null) return;
    const now = this.#options.clock.now();
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now;
      this.#windowCount = 0;
    }
    if (++this.#windowCount > this.#options.settings.maxMessagesPerSecond) {
      this.end(LiveCloseCodes.rateLimited, 'message rate exceeded', 'rate_limited');
      return;
    }
    let message: unknown;
    try {
      message = JSON.parse(textOf(data));
    } catch {
      this.end(LiveCloseCodes.invalidJson, 'invalid JSON', 'error');
      return;
    }
    if (typeof message !== 'object' || message === null) return;
    const { type, token } = message as { type?: unknown; token?: unknown };
    if (type === 'auth') {
      if (typeof token === 'string' && token.length > 0) void this.authenticate(token);
      else this.end(LiveCloseCodes.unauthorized, 'authentication failed', 'auth_failed');
    } else if (type === 'ping') {
      this.#send(PONG);
    }
  }

  #beat(): void {
    if (this.#reason !== null) return;
    if (!this.#alive) {
      this.#drop('heartbeat');
      return;
    }
    this.#alive = false;
    this.#socket.ping();
    if (this.#token !== null) void this.#recheck(this.#token);
  }

  /** Checks the current token again: a revoked session or disabled user ends the connection. */
  async #recheck(token: string): Promise<void> {
    let identity: LiveIdentity | null;
    try {
      identity = await this.#options.authenticate(token);
    } catch {
      // Shared state is down: the connection stays; expiry still ends it on time.
      return;
    }
    if (this.#reason !== null || token !== this.#token) return;
    if (identity === null) {
      const expired = this.#expiresAt <= this.#options.clock.now();
      this.end(
        LiveCloseCodes.unauthorized,
        'authentication failed',
        expired ? 'token_expired' : 'auth_failed',
      );
    } else {
      this.permissions = identity.permissions;
    }
  }

  #send(frame: string): void {
    if (this.#socket.readyState === this.#socket.OPEN) this.#socket.send(frame);
  }

  #stopTimers(): void {
    clearInterval(this.#heartbeat);
    if (this.#authTimer) clearTimeout(this.#authTimer);
    if (this.#expiryTimer) clearTimeout(this.#expiryTimer);
    this.#authTimer = null;
    this.#expiryTimer = null;
  }

  #onClose(): void {
    this.#stopTimers();
    if (this.#graceTimer) clearTimeout(this.#graceTimer);
    this.#reason ??= 'client';
    this.#options.hub.detach(this);
    const seconds = (performance.now() - this.#openedAt) / 1000;
    this.#options.hub.metrics.disconnected(this.#reason, seconds);
    this.#options.logger.info(
      {
        event: 'ws_closed',
        user_id: this.userId,
        reason: this.#reason,
        duration_ms: Math.round(seconds * 1000),
      },
      'live-event connection closed',
    );
    this.#resolveClosed();
  }
}

function textOf(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}
