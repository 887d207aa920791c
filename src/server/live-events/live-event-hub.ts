import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { SESSION_REVOKED_CHANNEL } from '../../identity/revocations.ts';
import type { SharedState } from '../../storage/state.ts';
import { type Listener, listen } from '../../storage/subscription.ts';
import { type DisconnectReason, LiveCloseCodes } from './errors.ts';
import { LiveEventMetrics } from './live-event-metrics.ts';

/** The kinds of live event, each gated by one platform permission. */
export type LiveEventType = 'alert' | 'security_event' | 'ban' | 'health';

/** One live event, as published and as sent to clients. */
export interface LiveEvent {
  type: LiveEventType;
  data: object;
  /** When it happened (ISO 8601). */
  at: string;
}

/** The platform permission a user needs to receive each kind of event. */
export const LIVE_EVENT_PERMISSIONS: Readonly<Record<LiveEventType, string>> = {
  alert: 'alerts:read',
  security_event: 'security:read',
  ban: 'security:read',
  health: 'monitoring:read',
};

/** The one pub/sub channel every instance publishes live events on and listens to. */
export const LIVE_EVENTS_CHANNEL = 'live-events';

/** A connection on this instance, as the hub sees it. */
export interface LiveSubscriber {
  /** The authenticated user; null until the connection has authenticated. */
  readonly userId: string | null;
  /** The login session behind its current token; null until authenticated. */
  readonly sessionId: string | null;
  /** Platform permissions; empty until admitted, so nothing is delivered before. */
  readonly permissions: ReadonlySet<string>;
  /** Sends one text frame, already serialised and UTF-8 encoded (shared by every connection). */
  deliver(frame: Buffer): void;
  /** Closes the connection with a close code and text; `reason` is what the metrics count. */
  end(code: number, text: string, reason: DisconnectReason): void;
  /** Resolves once the socket has closed. */
  readonly closed: Promise<void>;
}

/** Options of {@link LiveEventHub}. */
export interface LiveEventHubOptions {
  state: SharedState;
  logger: Logger;
  /** Where the `bastion_ws_*` metrics are registered. */
  registry: Registry;
  /** Authenticated connections one user may hold on this instance. Default 5. */
  maxConnectionsPerUser?: number;
  /** Retry interval of a failed subscription (ms); default that of `listen`. */
  retryMs?: number;
}

const TYPES = new Set<string>(Object.keys(LIVE_EVENT_PERMISSIONS));

/**
 * Live events across instances: `publish` sends an event over shared state's pub/sub, and every
 * instance (this one included) hands what it receives to its own connections that hold the
 * event's permission, serialised once per instance. Also the registry of this instance's
 * connections: per-user limits (per instance, not cluster-wide), session revocations and shutdown.
 */
export class LiveEventHub {
  /** The `bastion_ws_*` metrics. */
  readonly metrics: LiveEventMetrics;
  readonly #options: LiveEventHubOptions;
  readonly #maxPerUser: number;
  readonly #connections = new Set<LiveSubscriber>();
  readonly #admitted = new Set<LiveSubscriber>();
  readonly #perUser = new Map<string, number>();
  #listeners: Listener[] = [];

  constructor(options: LiveEventHubOptions) {
    this.#options = options;
    this.#maxPerUser = options.maxConnectionsPerUser ?? 5;
    this.metrics = new LiveEventMetrics(options.registry);
  }

  /** Subscribes to live events and session revocations; retried in the background while state is down. */
  start(): void {
    const { state, retryMs } = this.#options;
    this.#listeners = [
      listen(state, LIVE_EVENTS_CHANNEL, (message) => this.#receive(message), { retryMs }),
      listen(state, SESSION_REVOKED_CHANNEL, (sessionId) => this.#revoked(sessionId), { retryMs }),
    ];
  }

  /** Stops listening (connections are closed by the route's shutdown, before this). */
  async close(): Promise<void> {
    const listeners = this.#listeners;
    this.#listeners = [];
    await Promise.allSettled(listeners.map((listener) => listener.close()));
  }

  /**
   * Sends an event to every instance's permitted connections. Best effort: the promise never
   * rejects (a failure is logged), so callers may fire and forget. An unknown type is a
   * programming error and throws a TypeError at once.
   */
  publish(event: LiveEvent): Promise<void> {
    if (!TYPES.has(event.type)) throw new TypeError(`Unknown live event type ${String(event.type)}`);
    const message = JSON.stringify({ type: event.type, data: event.data, at: event.at });
    return this.#options.state.publish(LIVE_EVENTS_CHANNEL, message).catch((error: unknown) => {
      this.#options.logger.warn({ err: error, live_event: event.type }, 'could not publish a live event');
    });
  }

  /** Open connections on this instance, authenticated or not. */
  get size(): number {
    return this.#connections.size;
  }

  /** Tracks a newly opened connection (for shutdown and revocations). */
  attach(connection: LiveSubscriber): void {
    this.#connections.add(connection);
  }

  /** Counts an authenticated connection against its user's limit; false when over it. */
  admit(connection: LiveSubscriber): boolean {
    const userId = connection.userId;
    if (userId === null) throw new TypeError('admit() needs an authenticated connection');
    if (this.#admitted.has(connection)) return true;
    const count = this.#perUser.get(userId) ?? 0;
    if (count >= this.#maxPerUser) return false;
    this.#perUser.set(userId, count + 1);
    this.#admitted.add(connection);
    return true;
  }

  /** Forgets a closed connection. */
  detach(connection: LiveSubscriber): void {
    this.#connections.delete(connection);
    if (!this.#admitted.delete(connection) || connection.userId === null) return;
    const count = (this.#perUser.get(connection.userId) ?? 1) - 1;
    if (count > 0) this.#perUser.set(connection.userId, count);
    else this.#perUser.delete(connection.userId);
  }

  /**
   * Closes every connection with 1001 `shutdown` and waits until they are closed, at most
   * `graceMs` (connections that have not closed by then are dropped by their own close timer).
   */
  async shutdown(graceMs: number): Promise<void> {
    const closing = [...this.#connections].map((connection) => {
      connection.end(LiveCloseCodes.shutdown, 'shutdown', 'shutdown');
      return connection.closed;
    });
    if (closing.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(closing),
      new Promise((resolve) => {
        timer = setTimeout(resolve, graceMs);
      }),
    ]);
    clearTimeout(timer);
  }

  #receive(message: string): void {
    const event = parseEvent(message);
    if (event === null) {
      this.#options.logger.warn('ignored a malformed live event from pub/sub');
      return;
    }
    if (this.#admitted.size === 0) return;
    const permission = LIVE_EVENT_PERMISSIONS[event.type];
    // Re-serialised from the parsed fields and encoded once: clients get exactly {type, data, at}.
    const frame = Buffer.from(JSON.stringify(event));
    for (const connection of this.#admitted) {
      if (connection.permissions.has(permission)) connection.deliver(frame);
    }
  }

  #revoked(sessionId: string): void {
    for (const connection of this.#connections) {
      if (connection.sessionId === sessionId) {
        connection.end(LiveCloseCodes.unauthorized, 'session revoked', 'auth_failed');
      }
    }
  }
}

/** The event in a pub/sub message, or null when it is not one. */
function parseEvent(message: string): LiveEvent | null {
  let value: unknown;
  try {
    value = JSON.parse(message);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const { type, data, at } = value as Record<string, unknown>;
  if (typeof type !== 'string' || !TYPES.has(type)) return null;
  if (typeof data !== 'object' || data === null || typeof at !== 'string') return null;
  return { type: type as LiveEventType, data, at };
}
