import type { Clock } from '../core/clock.ts';

/** One key's count in its current window. */
interface Window {
  count: number;
  /** When the window ends (clock milliseconds). */
  endsAt: number;
}

/** What {@link LocalRateLimiter.take} answers. */
export interface LocalDecision {
  allowed: boolean;
  /** Requests still allowed in the window (never negative). */
  remaining: number;
  /** Milliseconds until the window ends. */
  msBeforeReset: number;
}

/**
 * A per-process fixed-window counter: the first request of a key opens a window of
 * `durationMs`; up to `points` requests are allowed in it. The same counting as
 * rate-limiter-flexible's memory limiter, answered synchronously: that limiter only answers
 * through a promise, which on the per-request path (one per limit) cost more than the counting
 * itself (see the README's Performance section and `bench/`). Shared counting across instances
 * stays with rate-limiter-flexible's Redis limiter.
 *
 * Ended windows are removed in one sweep per window length, not with a timer per key, so the
 * map holds at most the keys seen in the last two windows.
 */
export class LocalRateLimiter {
  readonly points: number;
  readonly durationMs: number;
  readonly #clock: Clock;
  readonly #windows = new Map<string, Window>();
  #sweepAt: number;

  constructor(options: { points: number; durationSeconds: number; clock: Clock }) {
    if (!Number.isInteger(options.points) || options.points < 0) {
      throw new TypeError(`points must be a non-negative integer, got ${options.points}`);
    }
    if (!(options.durationSeconds > 0)) {
      throw new TypeError(`durationSeconds must be positive, got ${options.durationSeconds}`);
    }
    this.points = options.points;
    this.durationMs = options.durationSeconds * 1000;
    this.#clock = options.clock;
    this.#sweepAt = this.#clock.now() + this.durationMs;
  }

  /** Counts one request of `key`. */
  take(key: string): LocalDecision {
    const now = this.#clock.now();
    if (now >= this.#sweepAt) this.#sweep(now);
    let window = this.#windows.get(key);
    if (window === undefined || window.endsAt <= now) {
      window = { count: 0, endsAt: now + this.durationMs };
      this.#windows.set(key, window);
    }
    window.count += 1;
    return {
      allowed: window.count <= this.points,
      remaining: window.count >= this.points ? 0 : this.points - window.count,
      msBeforeReset: window.endsAt - now,
    };
  }

  /** Keys currently counted (for tests and diagnostics). */
  get size(): number {
    return this.#windows.size;
  }

  #sweep(now: number): void {
    for (const [key, window] of this.#windows) {
      if (window.endsAt <= now) this.#windows.delete(key);
    }
    this.#sweepAt = now + this.durationMs;
  }
}
