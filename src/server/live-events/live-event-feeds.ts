import { alertView } from '../../alerting/alert-view.ts';
import type { AlertChange } from '../../alerting/engine.ts';
import type { IpRuleView } from '../../protection/ip-rules.ts';
import { eventSummaryOf } from '../../protection/security-events.ts';
import type { SecurityEventsTable } from '../../storage/schema.ts';
import type { LiveEventHub } from './live-event-hub.ts';

/** Security events published per stored batch; the rest of a batch is summed up in one event. */
export const MAX_SECURITY_EVENTS_PER_BATCH = 20;

/**
 * Publishes a compact view of each stored security event (no details: they may be large and are
 * one API call away), at most {@link MAX_SECURITY_EVENTS_PER_BATCH} per batch so an attack flood
 * cannot become a pub/sub flood; the remainder is announced as `{omitted: n}`.
 */
export function publishSecurityEvents(hub: LiveEventHub, batch: readonly SecurityEventsTable[]): void {
  const shown =
    batch.length > MAX_SECURITY_EVENTS_PER_BATCH ? MAX_SECURITY_EVENTS_PER_BATCH - 1 : batch.length;
  for (let index = 0; index < shown; index++) {
    const row = batch[index];
    if (row === undefined) break;
    void hub.publish({
      type: 'security_event',
      at: row.created_at,
      data: eventSummaryOf(row),
    });
  }
  const omitted = batch.length - shown;
  if (omitted > 0) {
    const last = batch[batch.length - 1];
    void hub.publish({
      type: 'security_event',
      at: last?.created_at ?? new Date().toISOString(),
      data: { omitted },
    });
  }
}

/** Publishes a `ban` event for a deny rule just added (automatic ban or `block-ip`). */
export function publishBan(hub: LiveEventHub, rule: IpRuleView): void {
  if (rule.action !== 'deny') return;
  void hub.publish({
    type: 'ban',
    at: rule.created_at ?? new Date().toISOString(),
    data: {
      id: rule.id,
      cidr: rule.cidr,
      reason: rule.reason,
      source: rule.source,
      created_by: rule.created_by,
      expires_at: rule.expires_at,
    },
  });
}

/** Publishes an alert's change (pending, firing, resolved, acknowledged, escalated, muted). */
export function publishAlertChange(hub: LiveEventHub, change: AlertChange, at: number): void {
  void hub.publish({
    type: 'alert',
    at: new Date(at).toISOString(),
    data: { event: change.event, alert: alertView(change.alert) },
  });
}
