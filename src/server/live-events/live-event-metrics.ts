import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { DISCONNECT_REASONS, type DisconnectReason } from './errors.ts';

/** The `/ws` connection metrics (names relied upon by dashboards and alert series). */
export class LiveEventMetrics {
  readonly #active: Gauge;
  readonly #connects: Counter;
  readonly #disconnects: Counter<'reason'>;
  readonly #duration: Histogram;
  /** Label children made once, so a disconnect costs no label lookup. */
  readonly #byReason: ReadonlyMap<DisconnectReason, { inc(): void }>;

  constructor(registry: Registry) {
    this.#active = new Gauge({
      name: 'bastion_ws_active_connections',
      help: 'Open /ws connections on this instance (authenticated or not yet).',
      registers: [registry],
    });
    this.#connects = new Counter({
      name: 'bastion_ws_connects_total',
      help: 'WebSocket upgrades accepted on /ws.',
      registers: [registry],
    });
    this.#disconnects = new Counter({
      name: 'bastion_ws_disconnects_total',
      help: 'Closed /ws connections, by reason.',
      labelNames: ['reason'],
      registers: [registry],
    });
    this.#duration = new Histogram({
      name: 'bastion_ws_connection_duration_seconds',
      help: 'How long /ws connections stayed open.',
      buckets: [1, 10, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600],
      registers: [registry],
    });
    this.#byReason = new Map(DISCONNECT_REASONS.map((reason) => [reason, this.#disconnects.labels(reason)]));
  }

  /** Counts an accepted upgrade. */
  connected(): void {
    this.#connects.inc();
    this.#active.inc();
  }

  /** Counts a closed connection, once, with why and how long it lasted. */
  disconnected(reason: DisconnectReason, seconds: number): void {
    this.#active.dec();
    this.#byReason.get(reason)?.inc();
    this.#duration.observe(seconds);
  }
}
