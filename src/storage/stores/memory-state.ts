import { type Clock, systemClock } from '../../core/clock.ts';
import type { SharedState } from '../state.ts';
import { deliver } from './deliver.ts';
import { checkTtl } from './ttl.ts';

/** Options for {@link MemoryState}. */
export interface MemoryStateOptions {
  /** Time source for expiry; default the system clock. */
  clock?: Clock;
  /** How often expired entries are purged in the background, in ms; default 60 000. */
  sweepIntervalMs?: number;
}

interface Entry {
  value: string;
  /** Absolute expiry in clock milliseconds; null when the entry never expires. */
  expiresAt: number | null;
}

interface Subscription {
  handler: (message: string) => void;
  active: boolean;
}

/**
 * Shared state held in this process only: correct for a single instance and for tests, but
 * instances behind a load balancer do not see each other's counters or messages.
 */
export class MemoryState implements SharedState {
  readonly kind = 'memory' as const;
  readonly #clock: Clock;
  readonly #entries = new Map<string, Entry>();
  readonly #channels = new Map<string, Set<Subscription>>();
  #sweepTimer: NodeJS.Timeout | null;
  #closed = false;

  constructor(options: MemoryStateOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    const sweepIntervalMs = options.sweepIntervalMs ?? 60_000;
    if (!(sweepIntervalMs > 0)) throw new RangeError('sweepIntervalMs must be a positive number');
    // Lazy expiry alone would keep keys that are written once and never read again forever.
    this.#sweepTimer = setInterval(() => this.#sweep(), sweepIntervalMs);
    this.#sweepTimer.unref();
  }

  /** Number of stored entries, including expired ones not yet swept; for diagnostics. */
  get size(): number {
    return this.#entries.size;
  }

  async increment(key: string, ttlMs: number, by = 1): Promise<{ value: number; ttlMs: number }> {
    this.#assertOpen();
    const ttl = checkTtl(ttlMs);
    checkAmount(by);
    const now = this.#clock.now();
    const entry = this.#live(key, now);
    const current = entry ? parseCounter(entry.value) : 0;
    const value = current + by;
    if (!Number.isSafeInteger(value)) throw new RangeError('increment would overflow');
    // The window is fixed at creation: later increments must not push the expiry out.
    const expiresAt = entry?.expiresAt ?? now + ttl;
    this.#entries.set(key, { value: String(value), expiresAt });
    return { value, ttlMs: expiresAt - now };
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    this.#assertOpen();
    const expiresAt = ttlMs === undefined ? null : this.#clock.now() + checkTtl(ttlMs);
    this.#entries.set(key, { value, expiresAt });
  }

  /** In-process pub/sub is never interrupted. */
  onResubscribed(_handler: () => void): () => void {
    return () => {};
  }

  async get(key: string): Promise<string | null> {
    this.#assertOpen();
    return this.#live(key, this.#clock.now())?.value ?? null;
  }

  async delete(key: string): Promise<boolean> {
    this.#assertOpen();
    const existed = this.#live(key, this.#clock.now()) !== undefined;
    this.#entries.delete(key);
    return existed;
  }

  async consume(key: string): Promise<string | null> {
    this.#assertOpen();
    const entry = this.#live(key, this.#clock.now());
    this.#entries.delete(key);
    return entry?.value ?? null;
  }

  async compareAndSet(key: string, expected: string | null, next: string, ttlMs?: number): Promise<boolean> {
    this.#assertOpen();
    const ttl = ttlMs === undefined ? undefined : checkTtl(ttlMs);
    const now = this.#clock.now();
    const current = this.#live(key, now)?.value ?? null;
    if (current !== expected) return false;
    this.#entries.set(key, { value: next, expiresAt: ttl === undefined ? null : now + ttl });
    return true;
  }

  async publish(channel: string, message: string): Promise<void> {
    this.#assertOpen();
    const subscriptions = this.#channels.get(channel);
    if (!subscriptions) return;
    // Snapshot now so a subscriber added after this publish does not see it, as with Redis.
    for (const subscription of [...subscriptions]) {
      // Redis never delivers inside publish(); callers must not come to rely on that here.
      queueMicrotask(() => {
        if (subscription.active) deliver(subscription.handler, message);
      });
    }
  }

  async subscribe(channel: string, handler: (message: string) => void): Promise<() => Promise<void>> {
    this.#assertOpen();
    const subscription: Subscription = { handler, active: true };
    let subscriptions = this.#channels.get(channel);
    if (!subscriptions) {
      subscriptions = new Set();
      this.#channels.set(channel, subscriptions);
    }
    subscriptions.add(subscription);
    return async () => {
      subscription.active = false;
      const current = this.#channels.get(channel);
      if (!current) return;
      current.delete(subscription);
      if (current.size === 0) this.#channels.delete(channel);
    };
  }

  async ping(): Promise<number> {
    this.#assertOpen();
    return 0;
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#sweepTimer) clearInterval(this.#sweepTimer);
    this.#sweepTimer = null;
    for (const subscriptions of this.#channels.values()) {
      for (const subscription of subscriptions) subscription.active = false;
    }
    this.#channels.clear();
    this.#entries.clear();
  }

  /** The entry at `key` unless it has expired, in which case it is dropped. */
  #live(key: string, now: number): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry?.expiresAt != null && entry.expiresAt <= now) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry;
  }

  #sweep(): void {
    const now = this.#clock.now();
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt !== null && entry.expiresAt <= now) this.#entries.delete(key);
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('MemoryState is closed');
  }
}

function checkAmount(by: number): void {
  if (!Number.isSafeInteger(by)) throw new RangeError(`increment amount must be an integer, got ${by}`);
}

/** Mirrors Redis INCRBY, which refuses values that are not integers. */
function parseCounter(value: string): number {
  const parsed = /^-?\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(parsed)) throw new TypeError('value is not an integer or out of range');
  return parsed;
}
