import { formatAlertValue } from '../templates.ts';
import type { AlertSnapshot, Notification } from '../types.ts';

/** What an alert is told by: its `summary` annotation, else its `description`, else the rule's name. */
export function alertSummary(alert: AlertSnapshot): string {
  return alert.annotations.summary ?? alert.annotations.description ?? alert.rule;
}

/** `name=value` pairs of a label set, in name order, comma-separated. */
export function formatLabels(labels: Readonly<Record<string, string>>): string {
  return Object.keys(labels)
    .sort()
    .map((name) => `${name}=${labels[name]}`)
    .join(', ');
}

/** The notification as plain text: the e-mail's text part. */
export function notificationText(notification: Notification): string {
  const lines = [notification.title, `Status: ${notification.status} · Severity: ${notification.severity}`];
  if (notification.test) lines.push('This is a test notification.');
  for (const alert of notification.alerts) {
    lines.push(
      '',
      `- ${alert.rule} (${alert.status}, ${alert.severity}): ${alertSummary(alert)}`,
      `  value: ${formatAlertValue(alert.value)} · since ${alert.startsAt}${alert.endsAt ? ` · until ${alert.endsAt}` : ''}`,
    );
    if (Object.keys(alert.labels).length > 0) lines.push(`  labels: ${formatLabels(alert.labels)}`);
    const told = alert.annotations.summary !== undefined ? 'summary' : 'description';
    for (const [name, text] of Object.entries(alert.annotations)) {
      if (name !== told) lines.push(`  ${name}: ${text}`);
    }
  }
  if (notification.url) lines.push('', `More: ${notification.url}`);
  lines.push('', `Idempotency key: ${notification.idempotencyKey}`);
  return `${lines.join('\n')}\n`;
}

/** `text` cut to `max` characters, an ellipsis marking the cut (receivers refuse longer fields). */
export function clipText(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
