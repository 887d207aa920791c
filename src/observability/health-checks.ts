import { statfs } from 'node:fs/promises';
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import v8 from 'node:v8';
import type { BastionConfig } from '../config/schema.ts';
import type { Database } from '../storage/database.ts';
import { pendingMigrations } from '../storage/migrator.ts';
import type { SharedState } from '../storage/state.ts';
import type { CheckResult, HealthCheck, HealthStatus } from './health.ts';

type Thresholds = BastionConfig['health'];

function above(value: number, warn: number, fail: number): HealthStatus {
  if (value >= fail) return 'fail';
  return value >= warn ? 'warn' : 'pass';
}

const round = (value: number, digits = 2) => Number(value.toFixed(digits));

/** Database round-trip (`select 1`). */
export function databaseCheck(database: Database, thresholds: Thresholds): HealthCheck {
  return {
    key: 'database:responseTime',
    componentType: 'datastore',
    async run(): Promise<CheckResult> {
      const ms = await database.ping();
      const status: HealthStatus = ms >= thresholds.databaseWarnMs ? 'warn' : 'pass';
      return { status, observedValue: round(ms), observedUnit: 'ms' };
    },
  };
}

/** Shared-state round-trip (Redis PING). */
export function sharedStateCheck(state: SharedState): HealthCheck {
  return {
    key: `${state.kind === 'redis' ? 'redis' : 'sharedState'}:responseTime`,
    componentType: 'datastore',
    async run(): Promise<CheckResult> {
      const ms = await state.ping();
      return { status: 'pass', observedValue: round(ms), observedUnit: 'ms' };
    },
  };
}

/** Free space on the data directory's filesystem, as a ratio. */
export function diskCheck(directory: string, thresholds: Thresholds): HealthCheck {
  return {
    key: 'disk:freeRatio',
    componentType: 'system',
    async run(): Promise<CheckResult> {
      const stats = await statfs(directory);
      const ratio = stats.blocks > 0 ? stats.bavail / stats.blocks : 0;
      let status: HealthStatus = 'pass';
      if (ratio <= thresholds.diskFailFreeRatio) status = 'fail';
      else if (ratio <= thresholds.diskWarnFreeRatio) status = 'warn';
      return { status, observedValue: round(ratio, 4), observedUnit: 'ratio' };
    },
  };
}

/** Heap in use as a share of the heap limit. */
export function memoryCheck(thresholds: Thresholds): HealthCheck {
  return {
    key: 'memory:heapUtilization',
    componentType: 'system',
    async run(): Promise<CheckResult> {
      const heap = v8.getHeapStatistics();
      const ratio = heap.used_heap_size / heap.heap_size_limit;
      return {
        status: above(ratio, thresholds.memoryWarnRatio, thresholds.memoryFailRatio),
        observedValue: round(ratio, 4),
        observedUnit: 'ratio',
      };
    },
  };
}

/** The 99th percentile event-loop delay since the previous run. */
export class EventLoopDelayCheck implements HealthCheck {
  readonly key = 'eventLoop:delayP99';
  readonly componentType = 'system' as const;
  readonly #histogram: IntervalHistogram;
  readonly #thresholds: Thresholds;

  constructor(thresholds: Thresholds) {
    this.#thresholds = thresholds;
    this.#histogram = monitorEventLoopDelay({ resolution: 20 });
    this.#histogram.enable();
  }

  async run(): Promise<CheckResult> {
    const ms = this.#histogram.count > 0 ? this.#histogram.percentile(99) / 1e6 : 0;
    this.#histogram.reset();
    return {
      status: above(ms, this.#thresholds.eventLoopWarnMs, this.#thresholds.eventLoopFailMs),
      observedValue: round(ms),
      observedUnit: 'ms',
    };
  }

  /** Stops sampling. */
  stop(): void {
    this.#histogram.disable();
  }
}

/** Migrations known to this build that the database has not run (warn when any). */
export function migrationsCheck(database: Database): HealthCheck {
  return {
    key: 'migrations:pending',
    componentType: 'datastore',
    async run(): Promise<CheckResult> {
      const pending = await pendingMigrations(database);
      return {
        status: pending.length > 0 ? 'warn' : 'pass',
        observedValue: pending.length,
        observedUnit: 'count',
        ...(pending.length > 0 ? { output: `pending: ${pending.join(', ')}` } : {}),
      };
    },
  };
}
