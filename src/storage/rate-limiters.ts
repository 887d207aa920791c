import {
  type RateLimiterAbstract,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
} from 'rate-limiter-flexible';
import type { SharedState } from './state.ts';
import { RedisState } from './stores/redis-state.ts';

/** A named limit: `points` per `durationSeconds`. */
export interface RateLimitSpec {
  /** Namespace of the limiter's keys, e.g. 'login-ip'. */
  name: string;
  points: number;
  durationSeconds: number;
  /** Once exhausted, keep the key blocked this long (default: until the window ends). */
  blockDurationSeconds?: number;
}

/**
 * A rate limiter (rate-limiter-flexible) on the same backend as the shared state: Redis when the
 * state is Redis, so every instance counts together, with an in-memory insurance limiter that
 * takes over while Redis is unreachable (fail-open with local limits) and hands back when it
 * returns; process memory otherwise. The one place that picks the limiter's backend.
 */
export function createRateLimiter(state: SharedState, spec: RateLimitSpec): RateLimiterAbstract {
  const common = {
    points: spec.points,
    duration: spec.durationSeconds,
    blockDuration: spec.blockDurationSeconds ?? 0,
  };
  if (state instanceof RedisState) {
    return new RateLimiterRedis({
      ...common,
      storeClient: state.client,
      keyPrefix: `${state.keyPrefix}rl:${spec.name}`,
      insuranceLimiter: new RateLimiterMemory({ ...common, keyPrefix: `rl:${spec.name}` }),
    });
  }
  return new RateLimiterMemory({ ...common, keyPrefix: `rl:${spec.name}` });
}

/**
 * rate-limiter-flexible rejects with a `RateLimiterRes` when the limit is exceeded and with an
 * Error when the store fails; this tells them apart.
 */
export function isRateLimited(error: unknown): error is RateLimiterRes {
  return error instanceof RateLimiterRes;
}
