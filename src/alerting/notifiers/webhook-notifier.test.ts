import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  type Receiver,
  sampleAlert,
  sampleNotification,
  startReceiver,
} from '../../../test/support/notifier-fixtures.ts';
import { ManualClock } from '../../core/clock.ts';
import { OutboundClient } from '../../resilience/outbound-client.ts';
import { DeliveryError } from '../types.ts';
import { signWebhookBody, verifyWebhookSignature, WebhookNotifier } from './webhook-notifier.ts';

const SECRET = 'whsec-test-0123456789abcdef0123456789';
const transport = new OutboundClient({ timeoutMs: 2000, allowPrivateNetworks: true });
const clock = new ManualClock(Date.UTC(2026, 0, 1, 12, 0, 0));
let receivers: Receiver[] = [];

async function receiver(...args: Parameters<typeof startReceiver>): Promise<Receiver> {
  const started = await startReceiver(...args);
  receivers.push(started);
  return started;
}

/** The DeliveryError a send failed with (fails the test when it did not fail). */
async function failure(promise: Promise<void>): Promise<DeliveryError> {
  const error = await promise.then(
    () => null,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(DeliveryError);
  return error as DeliveryError;
}

afterEach(async () => {
  await Promise.all(receivers.map((started) => started.close()));
  receivers = [];
});
afterAll(() => transport.close());

describe('WebhookNotifier', () => {
  it('posts the notification as snake_case JSON with the idempotency key and a verifiable signature', async () => {
    const target = await receiver();
    const notifier = new WebhookNotifier({
      url: `${target.url}/hooks/bastion`,
      secret: SECRET,
      transport,
      clock,
    });
    const resolved = sampleAlert({
      fingerprint: 'ffff',
      status: 'resolved',
      endsAt: '2026-01-01T00:05:00.000Z',
    });
    const notification = sampleNotification({ alerts: [sampleAlert(), resolved], test: true });
    await notifier.send(notification);

    expect(target.received).toHaveLength(1);
    const [request] = target.received;
    expect(request?.method).toBe('POST');
    expect(request?.url).toBe('/hooks/bastion');
    expect(request?.headers['content-type']).toBe('application/json');
    expect(request?.headers['x-bastion-idempotency-key']).toBe(notification.idempotencyKey);
    expect(JSON.parse(request?.body ?? '')).toEqual({
      version: '1',
      idempotency_key: 'abcdef0123456789:digest:first',
      group_key: 'alertname=High CPU',
      status: 'firing',
      severity: 'critical',
      title: '[FIRING:critical] High CPU',
      common_labels: { alertname: 'High CPU', severity: 'critical', group: 'system.cpu' },
      url: 'https://console.example.com/alerts',
      created_at: '2026-01-01T00:01:00.000Z',
      test: true,
      alerts: [
        {
          fingerprint: 'f1a2b3c4d5e6f708',
          rule: 'High CPU',
          status: 'firing',
          severity: 'critical',
          labels: { alertname: 'High CPU', severity: 'critical', group: 'system.cpu' },
          annotations: { summary: 'CPU at 97.5% (over 90%)' },
          value: 97.5,
          starts_at: '2026-01-01T00:00:00.000Z',
          ends_at: null,
          acknowledged: false,
        },
        expect.objectContaining({
          fingerprint: 'ffff',
          status: 'resolved',
          ends_at: '2026-01-01T00:05:00.000Z',
        }),
      ],
    });

    const header = String(request?.headers['x-bastion-signature']);
    const seconds = Math.floor(clock.now() / 1000);
    expect(header).toMatch(new RegExp(`^t=${seconds},v1=[0-9a-f]{64}$`));
    const body = request?.body ?? '';
    const now = clock.now();
    expect(verifyWebhookSignature(header, body, SECRET, { now })).toBe(true);
    expect(verifyWebhookSignature(header, body.replace('"critical"', '"info"'), SECRET, { now })).toBe(false);
    expect(verifyWebhookSignature(header, body, `${SECRET}x`, { now })).toBe(false);
    expect(verifyWebhookSignature(header, body, SECRET, { now: now + 299_000 })).toBe(true);
    expect(verifyWebhookSignature(header, body, SECRET, { now: now + 301_000 })).toBe(false);
    expect(verifyWebhookSignature(header, body, SECRET, { now: now - 301_000 })).toBe(false);
    expect(
      verifyWebhookSignature(header, body, SECRET, { now: now + 3_000_000, toleranceSeconds: 3600 }),
    ).toBe(true);
    // The timestamp is signed too: moving it invalidates the signature.
    const moved = header.replace(`t=${seconds}`, `t=${seconds + 60}`);
    expect(verifyWebhookSignature(moved, body, SECRET, { now })).toBe(false);
  });

  it('sends no signature header without a secret', async () => {
    const target = await receiver();
    const notifier = new WebhookNotifier({ url: target.url, secret: null, transport, clock });
    await notifier.send(sampleNotification());
    expect(target.received[0]?.headers['x-bastion-signature']).toBeUndefined();
    expect(target.received[0]?.headers['x-bastion-idempotency-key']).toBe('abcdef0123456789:digest:first');
    expect(notifier.describe()).toEqual({ url: `${target.url}/`, signed: false });
  });

  it('describes itself without the secret or the path', () => {
    const notifier = new WebhookNotifier({
      url: 'https://hooks.example.com/inbound/T0KEN-in-path?key=QUERYSECRET',
      secret: SECRET,
      transport,
    });
    const described = JSON.stringify(notifier.describe());
    expect(notifier.describe()).toEqual({ url: 'https://hooks.example.com/inbound/…', signed: true });
    for (const secret of [SECRET, 'T0KEN-in-path', 'QUERYSECRET']) expect(described).not.toContain(secret);
  });
});

describe('verifyWebhookSignature', () => {
  const body = '{"a":1}';
  const now = Date.UTC(2026, 0, 1);
  const t = Math.floor(now / 1000);

  it('refuses missing, malformed and unsigned headers', () => {
    const valid = signWebhookBody(body, SECRET, t);
    expect(verifyWebhookSignature(valid, body, SECRET, { now })).toBe(true);
    for (const header of [
      undefined,
      null,
      '',
      't=abc,v1=00',
      `v1=${valid.split('v1=')[1]}`,
      `t=${t}`,
      `t=${t},v1=zz`,
    ]) {
      expect(verifyWebhookSignature(header, body, SECRET, { now })).toBe(false);
    }
  });

  it('accepts any v1 entry that matches (several during a key rotation)', () => {
    const old = signWebhookBody(body, 'old-secret', t).split(',')[1];
    const current = signWebhookBody(body, SECRET, t).split(',')[1];
    expect(verifyWebhookSignature(`t=${t},${old},${current}`, body, SECRET, { now })).toBe(true);
    expect(verifyWebhookSignature(`t=${t},${old}`, body, SECRET, { now })).toBe(false);
  });
});

describe('HTTP delivery failures', () => {
  const send = (url: string, client = transport) =>
    new WebhookNotifier({ url, secret: SECRET, transport: client, clock }).send(sampleNotification());

  it('treats 5xx and 408 as retryable and honours Retry-After in seconds', async () => {
    const target = await receiver((request, response) => {
      if (request.url === '/408') response.writeHead(408).end();
      else if (request.url === '/503') response.writeHead(503, { 'Retry-After': '120' }).end('down');
      else response.writeHead(500).end('boom');
    });
    const plain = await failure(send(`${target.url}/500`));
    expect(plain.retryable).toBe(true);
    expect(plain.retryAfterSeconds).toBeNull();
    expect(plain.message).toBe(`webhook: ${new URL(target.url).host} answered HTTP 500: boom`);
    const unavailable = await failure(send(`${target.url}/503`));
    expect(unavailable).toMatchObject({ retryable: true, retryAfterSeconds: 120 });
    expect((await failure(send(`${target.url}/408`))).retryable).toBe(true);
  });

  it('treats 429 as retryable, reading an HTTP-date Retry-After against the clock', async () => {
    const retryAt = new Date(clock.now() + 90_000).toUTCString();
    const target = await receiver((_request, response) =>
      response.writeHead(429, { 'Retry-After': retryAt }).end(),
    );
    expect(await failure(send(target.url))).toMatchObject({ retryable: true, retryAfterSeconds: 90 });
  });

  it('treats other 4xx, and redirects, as permanent', async () => {
    const target = await receiver((request, response) => {
      if (request.url === '/moved') response.writeHead(301, { Location: '/elsewhere' }).end();
      else response.writeHead(request.url === '/gone' ? 410 : 400, { 'Retry-After': '5' }).end('bad payload');
    });
    const bad = await failure(send(`${target.url}/bad`));
    expect(bad).toMatchObject({ retryable: false, retryAfterSeconds: null });
    expect((await failure(send(`${target.url}/gone`))).retryable).toBe(false);
    expect((await failure(send(`${target.url}/moved`))).retryable).toBe(false);
  });

  it('treats a refused connection and a timeout as retryable', async () => {
    const closed = await startReceiver();
    await closed.close();
    const refused = await failure(send(closed.url));
    expect(refused.retryable).toBe(true);

    const silent = await receiver(() => {}); // never answers
    const impatient = new OutboundClient({ timeoutMs: 200, allowPrivateNetworks: true });
    try {
      const timedOut = await failure(send(silent.url, impatient));
      expect(timedOut.retryable).toBe(true);
      expect(timedOut.message).toMatch(/timed out/);
    } finally {
      await impatient.close();
    }
  });

  it('treats a destination the client refuses as permanent (bad configuration)', async () => {
    const strict = new OutboundClient({ timeoutMs: 2000, allowPrivateNetworks: false });
    try {
      const refused = await failure(send('http://127.0.0.1:9/hook', strict));
      expect(refused.retryable).toBe(false);
    } finally {
      await strict.close();
    }
  });

  it("passes the caller's signal through: an abort rejects with its reason", async () => {
    const silent = await receiver(() => {});
    const controller = new AbortController();
    const reason = new Error('shutting down');
    const notifier = new WebhookNotifier({ url: silent.url, secret: null, transport, clock });
    const sending = notifier.send(sampleNotification(), { signal: controller.signal });
    setTimeout(() => controller.abort(reason), 50);
    await expect(sending).rejects.toBe(reason);
  });
});
