import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app.ts';

/** What the app believes about the caller, from the route and from the access log. */
async function seen(t: TestApp, options: InjectOptions) {
  const res = await t.app.inject({ method: 'GET', url: '/whoami', ...options });
  await new Promise((resolve) => setImmediate(resolve));
  expect(res.statusCode).toBe(200);
  const id = res.headers['x-request-id'];
  const access = t.logs.lines.find((line) => line.msg === 'request completed' && line.request_id === id);
  const body = res.json() as { ip: string; ips: string[] | null; protocol: string; host: string };
  // The handler and the access log agree on the client.
  expect(access?.client_ip).toBe(body.ip);
  return { ...body, logged: access?.client_ip };
}

function app(trustedProxies?: string) {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      env: trustedProxies === undefined ? {} : { TRUSTED_PROXIES: trustedProxies },
      routes: (instance) => {
        instance.get('/whoami', { config: { auth: 'public' } }, async (request) => ({
          ip: request.ip,
          ips: request.ips ?? null,
          protocol: request.protocol,
          host: request.host,
        }));
      },
    });
  });
  afterAll(async () => {
    await t?.close();
  });
  return () => t;
}

const spoof = {
  'x-forwarded-for': '203.0.113.9',
  'x-forwarded-proto': 'https',
  'x-forwarded-host': 'evil.example',
  'x-real-ip': '198.51.100.1',
  forwarded: 'for=198.51.100.2;proto=https',
};

describe('with no TRUSTED_PROXIES', () => {
  const t = app();

  it('has no trusted proxies configured', () => {
    expect(t().config.server.trustedProxies).toEqual([]);
  });

  it('ignores a spoofed X-Forwarded-For and logs the socket address', async () => {
    const who = await seen(t(), { remoteAddress: '192.0.2.7', headers: spoof });
    expect(who.ip).toBe('192.0.2.7');
    expect(who.logged).toBe('192.0.2.7');
  });

  it('ignores it from loopback too', async () => {
    const who = await seen(t(), { remoteAddress: '127.0.0.1', headers: spoof });
    expect(who.logged).toBe('127.0.0.1');
  });

  it('does not believe forwarded protocol or host either', async () => {
    const who = await seen(t(), { remoteAddress: '192.0.2.7', headers: { ...spoof, host: 'api.example' } });
    expect(who.protocol).toBe('http');
    expect(who.host).toBe('api.example');
  });
});

describe('with TRUSTED_PROXIES=127.0.0.1/32', () => {
  const t = app('127.0.0.1/32');

  it('parses the list', () => {
    expect(t().config.server.trustedProxies).toEqual(['127.0.0.1/32']);
  });

  it('believes the forwarded client when the socket is the trusted proxy', async () => {
    const who = await seen(t(), {
      remoteAddress: '127.0.0.1',
      headers: { 'x-forwarded-for': '203.0.113.9' },
    });
    expect(who.ip).toBe('203.0.113.9');
    expect(who.logged).toBe('203.0.113.9');
  });

  it('takes the address the proxy saw, not one the client prepended', async () => {
    // The client sent "X-Forwarded-For: 6.6.6.6"; the proxy appended the real peer.
    const who = await seen(t(), {
      remoteAddress: '127.0.0.1',
      headers: { 'x-forwarded-for': '6.6.6.6, 10.9.8.7, 203.0.113.9' },
    });
    expect(who.logged).toBe('203.0.113.9');
  });

  it('recognises the proxy behind an IPv4-mapped IPv6 socket address (dual-stack listener)', async () => {
    const who = await seen(t(), {
      remoteAddress: '::ffff:127.0.0.1',
      headers: { 'x-forwarded-for': '203.0.113.9' },
    });
    expect(who.logged).toBe('203.0.113.9');
  });

  it('does not believe the header from an untrusted socket', async () => {
    const who = await seen(t(), {
      remoteAddress: '192.0.2.7',
      headers: { 'x-forwarded-for': '203.0.113.9' },
    });
    expect(who.logged).toBe('192.0.2.7');
  });

  it('does not trust a neighbour outside the /32', async () => {
    const who = await seen(t(), {
      remoteAddress: '127.0.0.2',
      headers: { 'x-forwarded-for': '203.0.113.9' },
    });
    expect(who.logged).toBe('127.0.0.2');
  });

  it('uses the socket address when the trusted proxy sends no header', async () => {
    const who = await seen(t(), { remoteAddress: '127.0.0.1' });
    expect(who.logged).toBe('127.0.0.1');
  });
});

describe('with TRUSTED_PROXIES=10.0.0.0/8', () => {
  const t = app('10.0.0.0/8');

  it('does not believe X-Forwarded-For from 127.0.0.1', async () => {
    const who = await seen(t(), {
      remoteAddress: '127.0.0.1',
      headers: { 'x-forwarded-for': '203.0.113.9' },
    });
    expect(who.ip).toBe('127.0.0.1');
    expect(who.logged).toBe('127.0.0.1');
  });

  it('believes it from an address inside the range', async () => {
    const who = await seen(t(), {
      remoteAddress: '10.20.30.40',
      headers: { 'x-forwarded-for': '203.0.113.9' },
    });
    expect(who.logged).toBe('203.0.113.9');
  });

  it('walks back through a chain of trusted proxies only', async () => {
    const who = await seen(t(), {
      remoteAddress: '10.0.0.2',
      headers: { 'x-forwarded-for': '6.6.6.6, 203.0.113.9, 10.0.0.1' },
    });
    expect(who.logged).toBe('203.0.113.9');
  });

  it('does not trust 11.0.0.1 (just outside the range)', async () => {
    const who = await seen(t(), { remoteAddress: '11.0.0.1', headers: { 'x-forwarded-for': '203.0.113.9' } });
    expect(who.logged).toBe('11.0.0.1');
  });
});

describe('with several TRUSTED_PROXIES including IPv6', () => {
  const t = app('10.0.0.0/8, ::1/128');

  it('parses a comma-separated list', () => {
    expect(t().config.server.trustedProxies).toEqual(['10.0.0.0/8', '::1/128']);
  });

  it('trusts an IPv6 loopback proxy', async () => {
    const who = await seen(t(), { remoteAddress: '::1', headers: { 'x-forwarded-for': '2001:db8::5' } });
    expect(who.logged).toBe('2001:db8::5');
  });

  it('does not trust IPv4 loopback, which is not listed', async () => {
    const who = await seen(t(), {
      remoteAddress: '127.0.0.1',
      headers: { 'x-forwarded-for': '203.0.113.9' },
    });
    expect(who.logged).toBe('127.0.0.1');
  });
});
