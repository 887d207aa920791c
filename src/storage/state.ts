/**
 * The fast shared-state contract: counters, flags and messages that every instance behind a
 * load balancer must agree on. Every read-modify-write is a single atomic operation; callers
 * never compose get-then-set themselves.
 *
 * Keys and channels are plain strings; implementations add their own namespace prefix.
 * TTLs are in milliseconds and always positive.
 */
export interface SharedState {
  /** Which backend this is: 'memory' or 'redis'. */
  readonly kind: 'memory' | 'redis';

  /**
   * Adds `by` (default 1) to the counter at `key`, creating it at 0 first. The expiry is set
   * when the counter is created (or has none) and is not extended by later increments, so a
   * fixed window stays fixed. Returns the new value and the milliseconds left to live.
   */
  increment(key: string, ttlMs: number, by?: number): Promise<{ value: number; ttlMs: number }>;

  /** Stores `value` at `key`, replacing any value; expires after `ttlMs` when given. */
  set(key: string, value: string, ttlMs?: number): Promise<void>;

  /** The value at `key`, or null when absent or expired. */
  get(key: string): Promise<string | null>;

  /** Removes `key`; true when something was removed. */
  delete(key: string): Promise<boolean>;

  /**
   * Reads and removes `key` in one step: of any number of concurrent callers, exactly one
   * receives the value and the others receive null. For one-time codes and nonces.
   */
  consume(key: string): Promise<string | null>;

  /**
   * Sets `key` to `next` only when its current value equals `expected` (null: only when the key
   * is absent). Returns true when the value was written. `ttlMs`, when given, sets the expiry of
   * the new value; otherwise a written value keeps no expiry.
   */
  compareAndSet(key: string, expected: string | null, next: string, ttlMs?: number): Promise<boolean>;

  /** Sends `message` to every subscriber of `channel` on every instance. */
  publish(channel: string, message: string): Promise<void>;

  /**
   * Calls `handler` for each message published to `channel` from now on. Resolves once the
   * subscription is active; the returned function ends it.
   */
  subscribe(channel: string, handler: (message: string) => void): Promise<() => Promise<void>>;

  /**
   * Calls `handler` whenever pub/sub comes back after an interruption (subscriptions are renewed
   * by themselves; messages published meanwhile were missed, so caches that rely on them should be
   * dropped). Backends that cannot be interrupted never call it. Returns a function that stops it.
   */
  onResubscribed(handler: () => void): () => void;

  /** Round-trip to the backend; resolves with the latency in milliseconds or rejects. */
  ping(): Promise<number>;

  /** Releases connections and timers. The instance is unusable afterwards. */
  close(): Promise<void>;
}
