import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AlertSnapshot, Notification } from '../../src/alerting/types.ts';

/** One request a {@link Receiver} got, body as sent. */
export interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A real HTTP listener on 127.0.0.1 standing in for a webhook, Slack or Pushover (tests only). */
export interface Receiver {
  url: string;
  received: ReceivedRequest[];
  close(): Promise<void>;
}

/** Starts a receiver answering each request with `answer` (default 200, empty body). */
export async function startReceiver(
  answer: (request: ReceivedRequest, response: ServerResponse) => void = (_request, response) =>
    response.end(),
): Promise<Receiver> {
  const received: ReceivedRequest[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const entry = {
        method: request.method ?? '',
        url: request.url ?? '',
        headers: request.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      received.push(entry);
      answer(entry, response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A firing alert snapshot; `overrides` replace fields. */
export function sampleAlert(overrides: Partial<AlertSnapshot> = {}): AlertSnapshot {
  return {
    fingerprint: 'f1a2b3c4d5e6f708',
    rule: 'High CPU',
    status: 'firing',
    severity: 'critical',
    labels: { alertname: 'High CPU', severity: 'critical', group: 'system.cpu' },
    annotations: { summary: 'CPU at 97.5% (over 90%)' },
    value: 97.5,
    startsAt: '2026-01-01T00:00:00.000Z',
    endsAt: null,
    acknowledged: false,
    ...overrides,
  };
}

/** A notification of one firing critical alert; `overrides` replace fields. */
export function sampleNotification(overrides: Partial<Notification> = {}): Notification {
  const alert = sampleAlert();
  return {
    idempotencyKey: 'abcdef0123456789:digest:first',
    groupKey: 'alertname=High CPU',
    status: 'firing',
    severity: 'critical',
    commonLabels: alert.labels,
    alerts: [alert],
    title: '[FIRING:critical] High CPU',
    url: 'https://console.example.com/alerts',
    createdAt: '2026-01-01T00:01:00.000Z',
    test: false,
    ...overrides,
  };
}
