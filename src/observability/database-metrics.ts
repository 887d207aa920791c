import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Database, DatabaseKind, QueryEvent } from '../storage/database.ts';

const MAX_LOGGED_SQL = 500;

/** Query duration histogram, slow-query counter and log line, and PostgreSQL pool gauges. */
export class DatabaseMetrics {
  readonly #duration: Histogram<'system' | 'operation'>;
  readonly #slow: Counter<'system' | 'operation'>;
  readonly #errors: Counter<'system' | 'operation'>;
  readonly #slowMs: number;
  readonly #logger: Logger;
  #system: DatabaseKind = 'sqlite';

  constructor(registry: Registry, options: { slowQueryMs: number; logger: Logger }) {
    this.#slowMs = options.slowQueryMs;
    this.#logger = options.logger;
    this.#duration = new Histogram({
      name: 'db_client_operation_duration_seconds',
      help: 'Duration of database operations by kind.',
      labelNames: ['system', 'operation'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
    this.#slow = new Counter({
      name: 'db_client_slow_queries_total',
      help: 'Database operations slower than the slow-query threshold.',
      labelNames: ['system', 'operation'],
      registers: [registry],
    });
    this.#errors = new Counter({
      name: 'db_client_errors_total',
      help: 'Database operations that failed.',
      labelNames: ['system', 'operation'],
      registers: [registry],
    });
  }

  /** The callback given to `openDatabase({ onQuery })`. */
  readonly onQuery = (event: QueryEvent): void => {
    const labels = { system: this.#system, operation: event.operation };
    this.#duration.observe(labels, event.durationMs / 1000);
    if (event.failed) this.#errors.inc(labels);
    if (event.durationMs >= this.#slowMs) {
      this.#slow.inc(labels);
      // Only the statement text: parameter values may hold secrets.
      this.#logger.warn(
        {
          event: 'slow_query',
          operation: event.operation,
          duration_ms: Math.round(event.durationMs),
          sql: event.sql.slice(0, MAX_LOGGED_SQL),
        },
        'slow database query',
      );
    }
  };

  /** Attaches the opened database: its system label and, for PostgreSQL, pool gauges. */
  attach(registry: Registry, database: Database): void {
    this.#system = database.kind;
    if (database.kind !== 'postgres') return;
    new Gauge({
      name: 'db_client_connections',
      help: 'PostgreSQL pool connections by state.',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        const stats = database.poolStats();
        if (!stats) return;
        this.set({ state: 'idle' }, stats.idle);
        this.set({ state: 'used' }, stats.total - stats.idle);
      },
    });
    new Gauge({
      name: 'db_client_connections_max',
      help: 'Largest number of PostgreSQL pool connections allowed.',
      registers: [registry],
      collect() {
        this.set(database.poolStats()?.max ?? 0);
      },
    });
    new Gauge({
      name: 'db_client_connections_pending_requests',
      help: 'Requests waiting for a PostgreSQL pool connection.',
      registers: [registry],
      collect() {
        this.set(database.poolStats()?.waiting ?? 0);
      },
    });
  }
}
