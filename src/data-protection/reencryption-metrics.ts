import { Counter, Gauge, type Registry } from 'prom-client';

type Label = 'table' | 'column';
/** Labels of every re-encryption series: the column's location (a bounded set). */
export type ColumnLabels = Record<Label, string>;

function metric<T extends Counter<Label> | Gauge<Label>>(
  registry: Registry | undefined,
  name: string,
  create: (registers: Registry[]) => T,
  kind: typeof Counter | typeof Gauge,
): T {
  // A second job on the same registry (a foreground run beside the server's) shares the series.
  const existing = registry?.getSingleMetric(name);
  if (existing instanceof kind) return existing as T;
  return create(registry ? [registry] : []);
}

/** The re-encryption job's Prometheus series; registered in `registry` when given (default none). */
export class ReencryptionMetrics {
  /** `bastion_reencryption_rows_total`: values moved to the active key. */
  readonly done: Counter<Label>;
  /** `bastion_reencryption_failures_total`: values that could not be decrypted. */
  readonly failures: Counter<Label>;
  /** `bastion_reencryption_remaining_rows`: values still under another key, at the last count. */
  readonly remaining: Gauge<Label>;

  constructor(registry?: Registry) {
    const labelNames = ['table', 'column'] as const;
    this.done = metric(
      registry,
      'bastion_reencryption_rows_total',
      (registers) =>
        new Counter({
          name: 'bastion_reencryption_rows_total',
          help: 'Encrypted values moved to the active field key by the re-encryption job.',
          labelNames,
          registers,
        }),
      Counter,
    );
    this.failures = metric(
      registry,
      'bastion_reencryption_failures_total',
      (registers) =>
        new Counter({
          name: 'bastion_reencryption_failures_total',
          help: 'Encrypted values the re-encryption job could not decrypt (left as they are).',
          labelNames,
          registers,
        }),
      Counter,
    );
    this.remaining = metric(
      registry,
      'bastion_reencryption_remaining_rows',
      (registers) =>
        new Gauge({
          name: 'bastion_reencryption_remaining_rows',
          help: 'Encrypted values still under a key other than the active field key (at the last count).',
          labelNames,
          registers,
        }),
      Gauge,
    );
  }
}
