import type { Clock } from '../core/clock.ts';

/** Health status per the IETF health-check draft (`application/health+json`). */
export type HealthStatus = 'pass' | 'warn' | 'fail';

/** What one check observed. */
export interface CheckResult {
  status: HealthStatus;
  observedValue?: number | string;
  observedUnit?: string;
  /** Why a check did not pass (never secrets or stack traces). */
  output?: string;
}

/** A health check, keyed `component:measurement` (e.g. `database:responseTime`). */
export interface HealthCheck {
  readonly key: string;
  readonly componentType: 'datastore' | 'system' | 'component';
  run(): Promise<CheckResult>;
}

/** One entry under `checks` in the response. */
export interface CheckReport extends CheckResult {
  componentType: string;
  time: string;
}

/** A full health report. */
export interface HealthReport {
  status: HealthStatus;
  checks: Record<string, CheckReport[]>;
}

const RANK: Record<HealthStatus, number> = { pass: 0, warn: 1, fail: 2 };

/** The worse of the statuses (fail > warn > pass). */
export function worst(statuses: Iterable<HealthStatus>): HealthStatus {
  let result: HealthStatus = 'pass';
  for (const status of statuses) if (RANK[status] > RANK[result]) result = status;
  return result;
}

/** A change between two health reports: the overall status and each check that moved. */
export interface HealthChange {
  status: HealthStatus;
  previous: HealthStatus;
  checks: Record<string, { from: HealthStatus | null; to: HealthStatus | undefined }>;
}

/**
 * Runs the registered checks in parallel, each bounded by a timeout, and caches the report for
 * `cacheMs` so that probes cannot hammer the database; concurrent callers share one run.
 */
export class HealthService {
  readonly #checks: HealthCheck[] = [];
  readonly #timeoutMs: number;
  readonly #cacheMs: number;
  readonly #clock: Clock;
  #cached: { at: number; report: Promise<HealthReport> } | null = null;
  readonly #listeners: Array<(change: HealthChange) => void> = [];
  /** Each check's status in the previous report, to tell what changed. */
  #previous: Record<string, HealthStatus> | null = null;
  #previousStatus: HealthStatus | null = null;
  #watch: NodeJS.Timeout | null = null;

  constructor(options: { timeoutMs: number; cacheMs: number; clock: Clock }) {
    this.#timeoutMs = options.timeoutMs;
    this.#cacheMs = options.cacheMs;
    this.#clock = options.clock;
  }

  /** Adds a check; keys must be unique. */
  add(check: HealthCheck): void {
    if (this.#checks.some((existing) => existing.key === check.key)) {
      throw new TypeError(`Duplicate health check ${check.key}`);
    }
    this.#checks.push(check);
  }

  /**
   * Calls `listener` whenever a report's overall status or a check's status differs from the
   * previous report's (not for the first report). Reports run when asked for (probes) and, once
   * {@link watch} is called, at its interval.
   */
  onChange(listener: (change: HealthChange) => void): void {
    this.#listeners.push(listener);
  }

  /** Runs the checks every `intervalMs` so that changes are seen without a probe; `stop()` ends it. */
  watch(intervalMs: number): void {
    if (this.#watch) return;
    this.#watch = setInterval(() => void this.report().catch(() => {}), intervalMs);
    this.#watch.unref();
  }

  /** Stops {@link watch}. */
  stop(): void {
    if (this.#watch) clearInterval(this.#watch);
    this.#watch = null;
  }

  /** The report, from cache when fresh. */
  report(): Promise<HealthReport> {
    const now = this.#clock.now();
    if (this.#cached && now - this.#cached.at < this.#cacheMs) return this.#cached.report;
    const report = this.#runAll();
    this.#cached = { at: now, report };
    return report;
  }

  async #runAll(): Promise<HealthReport> {
    const entries = await Promise.all(
      this.#checks.map(async (check) => [check, await this.#runOne(check)] as const),
    );
    const checks: Record<string, CheckReport[]> = {};
    const time = new Date(this.#clock.now()).toISOString();
    for (const [check, result] of entries) {
      checks[check.key] = [{ componentType: check.componentType, ...result, time }];
    }
    const report = { status: worst(entries.map(([, result]) => result.status)), checks };
    this.#compare(report);
    return report;
  }

  #compare(report: HealthReport): void {
    const statuses = Object.fromEntries(
      Object.entries(report.checks).map(([key, entries]) => [key, entries[0]?.status ?? 'fail']),
    ) as Record<string, HealthStatus>;
    const previous = this.#previous;
    const previousStatus = this.#previousStatus;
    this.#previous = statuses;
    this.#previousStatus = report.status;
    if (previous === null || previousStatus === null || this.#listeners.length === 0) return;
    const changed = Object.keys(statuses).filter((key) => statuses[key] !== previous[key]);
    if (changed.length === 0 && report.status === previousStatus) return;
    const change: HealthChange = {
      status: report.status,
      previous: previousStatus,
      checks: Object.fromEntries(
        changed.map((key) => [key, { from: previous[key] ?? null, to: statuses[key] }]),
      ),
    };
    for (const listener of this.#listeners) {
      try {
        listener(change);
      } catch {
        // A listener's failure must not break the report probes depend on.
      }
    }
  }

  async #runOne(check: HealthCheck): Promise<CheckResult> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<CheckResult>((resolve) => {
      timer = setTimeout(
        () => resolve({ status: 'fail', output: `timed out after ${this.#timeoutMs} ms` }),
        this.#timeoutMs,
      );
    });
    try {
      return await Promise.race([
        // Through a promise executor, so that a run() that throws synchronously is a failed
        // check rather than a rejected report (which would also stay cached for cacheMs).
        new Promise<CheckResult>((resolve) => resolve(check.run())).catch(
          (error: unknown): CheckResult => ({ status: 'fail', output: describeFailure(error) }),
        ),
        timeout,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}

function describeFailure(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  // First line only: driver messages can run long, and a stack is never useful to a probe.
  return `${typeof code === 'string' ? `${code}: ` : ''}${message.split('\n')[0]?.slice(0, 200) ?? ''}`;
}
