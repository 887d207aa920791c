import { Counter, type Registry } from 'prom-client';
import { RateLimiterMemory, RateLimiterRedis, type RateLimiterRes } from 'rate-limiter-flexible';
import type { Clock } from '../core/clock.ts';
import { isRateLimited } from '../storage/rate-limiters.ts';
import type { SharedState } from '../storage/state.ts';
import { RedisState } from '../storage/stores/redis-state.ts';
import { LocalRateLimiter } from './local-rate-limiter.ts';

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

/**
 * A named limiter, made once at start-up: counted in this process (answered synchronously) when
 * shared state is memory, in Redis (shared by every instance) when it is Redis.
 */
export type Limiter =
  | { readonly rule: RateLimitRule; readonly local: LocalRateLimiter; readonly shared: null }
  | { readonly rule: RateLimitRule; readonly local: null; readonly shared: RateLimiterRedis };

/** Whether limits are being counted together (Redis) or, for now, by this instance alone. */
export interface RateLimitStatus {
  backend: 'memory' | 'redis';
  mode: 'shared' | 'local-fallback' | 'local';
  fallback_since: string | null;
}

/**
 * Rate limits: each named limiter counts in Redis (rate-limiter-flexible) when shared state is
 * Redis, so N instances together admit no more than the limit; while Redis is unreachable a
 * local in-memory limiter per instance takes over (fail-open with local limits), which
 * `status()` reports for `/health/detailed`, and counting returns to Redis once it answers.
 * With memory state, a {@link LocalRateLimiter} counts and answers without a promise.
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
  limiter(name: string, rule: RateLimitRule): Limiter {
    const state = this.#state;
    if (!(state instanceof RedisState)) {
      const local = new LocalRateLimiter({ ...rule, clock: this.#clock });
      return { rule, local, shared: null };
    }
    const common = { points: rule.points, duration: rule.durationSeconds, keyPrefix: `rl:${name}` };
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
    const shared = new RateLimiterRedis({
      ...common,
      keyPrefix: `${state.keyPrefix}rl:${name}`,
      storeClient: state.client,
      insuranceLimiter: new Insurance(common),
    });
    return { rule, local: null, shared };
  }

  /**
   * Counts one request for `key`: synchronously for a local limiter, through a promise for a
   * shared one. Never throws or rejects (a store failure falls back or lets the request through).
   */
  consume(limiter: Limiter, key: string, scope: string): RateDecision | Promise<RateDecision> {
    if (limiter.local === null) return this.#consumeShared(limiter.shared, limiter.rule, key, scope);
    const taken = limiter.local.take(key);
    if (!taken.allowed) this.#limited.inc({ scope });
    return {
      allowed: taken.allowed,
      limit: limiter.rule.points,
      remaining: taken.remaining,
      resetSeconds: Math.max(1, Math.ceil(taken.msBeforeReset / 1000)),
    };
  }

  async #consumeShared(
    shared: RateLimiterRedis,
    rule: RateLimitRule,
    key: string,
    scope: string,
  ): Promise<RateDecision> {
    const callsBefore = this.#insuranceCalls;
    try {
      const result = await shared.consume(key);
      this.#noteShared(callsBefore);
      return decisionOf(rule, result, true);
    } catch (error) {
      if (isRateLimited(error)) {
        this.#noteShared(callsBefore);
        this.#limited.inc({ scope });
        return decisionOf(rule, error, false);
      }
      // Neither Redis nor the insurance limiter answered: let the request through.
      return {
        allowed: true,
        limit: rule.points,
        remaining: rule.points,
        resetSeconds: rule.durationSeconds,
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

function decisionOf(rule: RateLimitRule, result: RateLimiterRes, allowed: boolean): RateDecision {
  return {
    allowed,
    limit: rule.points,
    remaining: Math.max(0, result.remainingPoints),
    resetSeconds: Math.max(1, Math.ceil(result.msBeforeNext / 1000)),
  };
}
