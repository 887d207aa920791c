import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  type Receiver,
  sampleAlert,
  sampleNotification,
  startReceiver,
} from '../../../test/support/notifier-fixtures.ts';
import { OutboundClient } from '../../resilience/outbound-client.ts';
import { DeliveryError, type Severity } from '../types.ts';
import { PushoverNotifier } from './pushover-notifier.ts';

const transport = new OutboundClient({ timeoutMs: 2000, allowPrivateNetworks: true });
const TOKEN = 'azGDORePK8gMaC0QOYAMyEEuzJnyUi';
const USER = 'uQiRzpo4DXghDmr9QzzfQu27cmVRsG';
let target: Receiver | null = null;

afterEach(async () => {
  await target?.close();
  target = null;
});
afterAll(() => transport.close());

async function pushover(answer: Parameters<typeof startReceiver>[0]) {
  target = await startReceiver(answer);
  return new PushoverNotifier({
    token: TOKEN,
    user: USER,
    apiUrl: `${target.url}/1/messages.json`,
    transport,
  });
}

const accepted = (_request: unknown, response: import('node:http').ServerResponse) =>
  response.writeHead(200, { 'Content-Type': 'application/json' }).end('{"status":1,"request":"r1"}');

describe('PushoverNotifier', () => {
  it('posts the form Pushover expects', async () => {
    const notifier = await pushover(accepted);
    await notifier.send(
      sampleNotification({
        alerts: [sampleAlert(), sampleAlert({ rule: 'High memory', status: 'resolved', annotations: {} })],
      }),
    );
    const request = target?.received[0];
    expect(request?.method).toBe('POST');
    expect(request?.url).toBe('/1/messages.json');
    expect(request?.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(Object.fromEntries(new URLSearchParams(request?.body))).toEqual({
      token: TOKEN,
      user: USER,
      title: '[FIRING:critical] High CPU',
      message: 'critical: CPU at 97.5% (over 90%) (value 97.5)\nResolved: High memory (value 97.5)',
      priority: '1',
      timestamp: String(Date.UTC(2026, 0, 1, 0, 1) / 1000),
      url: 'https://console.example.com/alerts',
      url_title: 'Open in Bastion',
    });
  });

  it('maps severity to priority: info -1, warning 0, critical 1', async () => {
    const notifier = await pushover(accepted);
    const severities: Severity[] = ['info', 'warning', 'critical'];
    for (const severity of severities) await notifier.send(sampleNotification({ severity }));
    const priorities = target?.received.map((request) => new URLSearchParams(request.body).get('priority'));
    expect(priorities).toEqual(['-1', '0', '1']);
  });

  it('cuts fields to Pushover limits and leaves out a missing URL', async () => {
    const notifier = await pushover(accepted);
    const long = sampleAlert({ annotations: { summary: 'x'.repeat(2000) } });
    await notifier.send(
      sampleNotification({ title: 't'.repeat(400), alerts: [long], url: null, test: true }),
    );
    const form = new URLSearchParams(target?.received[0]?.body);
    expect(form.get('title')).toHaveLength(250);
    expect(form.get('title')?.startsWith('[TEST] ')).toBe(true);
    expect(form.get('message')).toHaveLength(1024);
    expect(form.has('url')).toBe(false);
  });

  it('classifies answers: 400 and status 0 permanent, 429 and 5xx retryable', async () => {
    const answers: Record<string, [number, string]> = {
      '/invalid-user': [400, '{"user":"invalid","errors":["user identifier is invalid"],"status":0}'],
      '/not-acknowledged': [200, '{"status":0}'],
      '/over-quota': [429, '{"status":0,"errors":["application over quota"]}'],
      '/bad-gateway': [502, 'bad gateway'],
    };
    target = await startReceiver((request, response) => {
      const [status, body] = answers[request.url] ?? [500, ''];
      response.writeHead(status, status === 429 ? { 'Retry-After': '60' } : {}).end(body);
    });
    const failure = async (path: string) => {
      const notifier = new PushoverNotifier({
        token: TOKEN,
        user: USER,
        apiUrl: `${target?.url}${path}`,
        transport,
      });
      const error = await notifier.send(sampleNotification()).then(
        () => null,
        (reason: unknown) => reason,
      );
      expect(error).toBeInstanceOf(DeliveryError);
      expect((error as DeliveryError).message).not.toContain(TOKEN);
      expect((error as DeliveryError).message).not.toContain(USER);
      return error as DeliveryError;
    };
    const invalid = await failure('/invalid-user');
    expect(invalid.retryable).toBe(false);
    expect(invalid.message).toContain('user identifier is invalid');
    expect((await failure('/not-acknowledged')).retryable).toBe(false);
    expect(await failure('/over-quota')).toMatchObject({ retryable: true, retryAfterSeconds: 60 });
    expect((await failure('/bad-gateway')).retryable).toBe(true);
  });

  it('describes itself without token or user', () => {
    const notifier = new PushoverNotifier({ token: TOKEN, user: USER, transport });
    expect(notifier.describe()).toEqual({ url: 'https://api.pushover.net/1/…' });
  });
});
