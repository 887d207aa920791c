import { Counter, type Registry } from 'prom-client';
import {
  type RateLimiterAbstract,
  RateLimiterMemory,
  RateLimiterRedis,
  type RateLimiterRes,
} from 'rate-limiter-flexible';
import type { Clock } from '../core/clock.ts';
import { isRateLimited } from '../storage/rate-limiters.ts';
import type { SharedState } from '../storage/state.ts';
import { RedisState } from '../storage/stores/redis-state.ts';

/** A limit: `points` requests per `durationSeconds`. */
export interface RateLimitRule {
  points: number;
  durationSeconds: number;
}

/** One limiter's answer for one request. */
export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Seconds until the window resets. */
  resetSeconds: number;
}

/** Whether limits are being counted together (Redis) or, for now, by this instance alone. */
export interface RateLimitStatus {
  backend: 'memory' | 'redis';
  mode: 'shared' | 'local-fallback' | 'local';
  fallback_since: string | null;
}

/**
 * Rate limits (rate-limiter-flexible): each named limiter counts in Redis when shared state is
 * Redis, so N instances together admit no more than the limit; while Redis is unreachable a
 * local in-memory limiter per instance takes over (fail-open with local limits), which
 * `status()` reports for `/health/detailed`, and counting returns to Redis once it answers.
 * Limiters are made at start-up (per route), never per request.
 */
export class RateLimits {
  readonly #state: SharedState;
  readonly #clock: Clock;
  readonly #limited: Counter<'scope'>;
  #fallbackAt: number | null = null;
  #insuranceCalls = 0;

  constructor(options: { state: SharedState; clock: Clock; registry: Registry }) {
    this.#state = options.state;
    this.#clock = options.clock;
    this.#limited = new Counter({
      name: 'bastion_rate_limited_total',
      help: 'Requests refused by a rate limit, by scope (ip, principal, route).',
      labelNames: ['scope'],
      registers: [options.registry],
    });
  }

  /** A limiter named `name` (its keys' namespace) for `rule`. */
  limiter(name: string, rule: RateLimitRule): RateLimiterAbstract {
    const common = { points: rule.points, duration: rule.durationSeconds, keyPrefix: `rl:${name}` };
    const state = this.#state;
    if (!(state instanceof RedisState)) return new RateLimiterMemory(common);
    const onFallback = () => {
      this.#insuranceCalls += 1;
      this.#fallbackAt ??= this.#clock.now();
    };
    // The insurance limiter runs only when Redis failed: that is how the fallback is noticed.
    class Insurance extends RateLimiterMemory {
      override consume(key: string | number, points?: number, options?: Record<string, unknown>) {
        onFallback();
        return super.consume(key, points, options);
      }
    }
    return new RateLimiterRedis({
      ...common,
      keyPrefix: `${state.keyPrefix}rl:${name}`,
      storeClient: state.client,
      insuranceLimiter: new Insurance(common),
    });
  }

  /** Counts one request for `key`; never throws (a store failure falls back or lets it through). */
  async consume(limiter: RateLimiterAbstract, key: string, scope: string): Promise<RateDecision> {
    const callsBefore = this.#insuranceCalls;
    try {
      const result = await limiter.consume(key);
      this.#noteShared(callsBefore);
      return decisionOf(limiter, result, true);
    } catch (error) {
      if (isRateLimited(error)) {
        this.#noteShared(callsBefore);
        this.#limited.inc({ scope });
        return decisionOf(limiter, error, false);
      }
      // Neither Redis nor the insurance limiter answered: let the request through.
      return {
        allowed: true,
        limit: limiter.points,
        remaining: limiter.points,
        resetSeconds: limiter.duration,
      };
    }
  }

  /** For `/health/detailed`. */
  status(): RateLimitStatus {
    const backend = this.#state.kind;
    if (backend === 'memory') return { backend, mode: 'local', fallback_since: null };
    const fallback = this.#fallbackAt;
    return {
      backend,
      mode: fallback === null ? 'shared' : 'local-fallback',
      fallback_since: fallback === null ? null : new Date(fallback).toISOString(),
    };
  }

  // A call answered without the insurance limiter means Redis counted it: the fallback is over.
  #noteShared(callsBefore: number): void {
    if (this.#insuranceCalls === callsBefore) this.#fallbackAt = null;
  }
}

function decisionOf(limiter: RateLimiterAbstract, result: RateLimiterRes, allowed: boolean): RateDecision {
  return {
    allowed,
    limit: limiter.points,
    remaining: Math.max(0, result.remainingPoints),
    resetSeconds: Math.max(1, Math.ceil(result.msBeforeNext / 1000)),
  };
}
