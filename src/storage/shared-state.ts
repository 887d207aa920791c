import type { Clock } from '../core/clock.ts';
import type { SharedState } from './state.ts';
import { MemoryState } from './stores/memory-state.ts';
import { RedisState } from './stores/redis-state.ts';

/**
 * The one place that picks the shared-state backend: Redis when `redisUrl` is set, so every
 * instance agrees; otherwise process memory, which is only correct for a single instance.
 */
export function createSharedState(options: {
  /** Redis connection URL; default none, which selects the in-memory backend. */
  redisUrl?: string | null;
  /** Namespace for keys and channels in Redis; default 'bastion:'. Unused in memory. */
  keyPrefix?: string;
  /** Time source for the in-memory backend; default the system clock. Redis keeps its own time. */
  clock?: Clock;
}): SharedState {
  if (options.redisUrl) {
    return new RedisState({ url: options.redisUrl, keyPrefix: options.keyPrefix });
  }
  return new MemoryState({ clock: options.clock });
}
