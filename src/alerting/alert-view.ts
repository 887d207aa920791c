import type { AlertSnapshot } from './types.ts';

/** An alert as the API and live events show it (snake_case). */
export function alertView(alert: AlertSnapshot) {
  return {
    fingerprint: alert.fingerprint,
    rule: alert.rule,
    status: alert.status,
    severity: alert.severity,
    labels: alert.labels,
    annotations: alert.annotations,
    value: alert.value,
    starts_at: alert.startsAt,
    ends_at: alert.endsAt,
    acknowledged: alert.acknowledged,
  };
}
