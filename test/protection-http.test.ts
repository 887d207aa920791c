import { connect } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load-config.ts';
import { SecurityHeaders } from '../src/protection/headers.ts';
import { startTestApp, type TestApp, type TestAppOptions } from './support/app.ts';

let current: TestApp | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

const routes: TestAppOptions['routes'] = (app: FastifyInstance) => {
  app.get('/api/things', { config: { auth: 'public' } }, async () => ({ ok: true }));
  app.post('/api/things', { config: { auth: 'public' } }, async () => ({ ok: true }));
  app.get('/console/page', { config: { auth: 'public', headers: 'console' } }, async () => 'page');
  app.get(
    '/embeddable',
    { config: { auth: 'public', headers: { 'x-frame-options': null } } },
    async () => 'x',
  );
  app.get('/private', { config: { auth: 'authenticated' } }, async () => ({ ok: true }));
};

async function start(options: TestAppOptions = {}): Promise<FastifyInstance> {
  current = await startTestApp({ routes, ...options });
  return current.app;
}

const API_HEADERS = {
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

describe('security headers', () => {
  it('every kind of API response carries the API set, and no banner', async () => {
    const app = await start();
    for (const [url, status] of [
      ['/api/things', 200],
      ['/nowhere', 404],
      ['/private', 401],
      ['/health/live', 200],
    ] as const) {
      const response = await app.inject({ url });
      expect(response.statusCode, url).toBe(status);
      expect(response.headers, url).toMatchObject(API_HEADERS);
      expect(response.headers['permissions-policy'], url).toContain('camera=()');
      expect(response.headers['x-powered-by'], url).toBeUndefined();
      expect(response.headers.server, url).toBeUndefined();
      expect(response.headers['strict-transport-security'], url).toBeUndefined();
    }
  });

  it('identity responses are not stored; the console has its own CSP; a route can change a header', async () => {
    const app = await start();
    const login = await app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { email: 'a@b.test', password: 'x' },
    });
    expect(login.headers['cache-control']).toBe('no-store');
    expect(login.headers).toMatchObject(API_HEADERS);
    const page = await app.inject({ url: '/console/page' });
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    const embeddable = await app.inject({ url: '/embeddable' });
    expect(embeddable.headers['x-frame-options']).toBeUndefined();
    expect(embeddable.headers['x-content-type-options']).toBe('nosniff');
  });

  it('the config file can change the API set', async () => {
    const app = await start({
      configure: (config) => {
        config.protection.headers.api = { 'referrer-policy': 'strict-origin', 'x-extra': 'yes' };
      },
    });
    const response = await app.inject({ url: '/api/things' });
    expect(response.headers['referrer-policy']).toBe('strict-origin');
    expect(response.headers['x-extra']).toBe('yes');
  });

  it('HSTS (one year, subdomains) in production only, unless turned off', async () => {
    const production = await loadConfig({ file: null, env: { NODE_ENV: 'production' } });
    expect(new SecurityHeaders(production).profile('api')['strict-transport-security']).toBe(
      'max-age=31536000; includeSubDomains',
    );
    expect(new SecurityHeaders(production).profile('console')['strict-transport-security']).toBeDefined();
    production.protection.hsts = false;
    expect(new SecurityHeaders(production).profile('api')['strict-transport-security']).toBeUndefined();
    const development = await loadConfig({ file: null, env: { NODE_ENV: 'development' } });
    expect(new SecurityHeaders(development).profile('api')['strict-transport-security']).toBeUndefined();
  });

  it('refuses header changes that are not headers', async () => {
    const config = await loadConfig({ file: null, env: {} });
    config.protection.headers.api = { 'bad name': 'x' };
    expect(() => new SecurityHeaders(config)).toThrow(/not a valid header name/);
    config.protection.headers.api = { 'x-ok': 'a\r\nSet-Cookie: x=1' };
    expect(() => new SecurityHeaders(config)).toThrow(/line break/);
  });
});

describe('CORS', () => {
  const ALLOWED = 'https://app.example.com';
  const preflight = (app: FastifyInstance, origin: string) =>
    app.inject({
      method: 'OPTIONS',
      url: '/api/things',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type',
      },
    });

  it('answers listed origins exactly, with credentials, and gives others nothing', async () => {
    const app = await start({ env: { CORS_ORIGINS: `${ALLOWED},https://admin.example.com:8443` } });
    const none = await app.inject({ url: '/api/things' });
    expect(none.headers.vary).toContain('Origin');
    expect(none.headers['access-control-allow-origin']).toBeUndefined();

    const listed = await app.inject({ url: '/api/things', headers: { origin: ALLOWED } });
    expect(listed.headers['access-control-allow-origin']).toBe(ALLOWED);
    expect(listed.headers['access-control-allow-credentials']).toBe('true');
    expect(listed.headers['access-control-expose-headers']).toContain('x-request-id');
    expect(listed.headers.vary).toContain('Origin');

    for (const origin of [
      'https://evil.example',
      'https://app.example.com.evil.example',
      'http://app.example.com',
      'https://app.example.com:444',
      'null',
      'https://admin.example.com',
    ]) {
      const response = await app.inject({ url: '/api/things', headers: { origin } });
      expect(response.headers['access-control-allow-origin'], origin).toBeUndefined();
      expect(response.headers['access-control-allow-credentials'], origin).toBeUndefined();
      expect(response.headers.vary, origin).toContain('Origin');
      const pre = await preflight(app, origin);
      expect(pre.headers['access-control-allow-origin'], origin).toBeUndefined();
      expect(pre.headers['access-control-allow-methods'], origin).toBeUndefined();
    }
    expect(
      (await app.inject({ url: '/api/things', headers: { origin: 'https://admin.example.com:8443' } }))
        .headers['access-control-allow-origin'],
    ).toBe('https://admin.example.com:8443');
  });

  it('answers a preflight from a listed origin with 204 and a cache time, before authentication', async () => {
    const app = await start({ env: { CORS_ORIGINS: ALLOWED } });
    const response = await preflight(app, ALLOWED);
    expect(response.statusCode).toBe(204);
    expect(response.headers['access-control-allow-origin']).toBe(ALLOWED);
    expect(response.headers['access-control-allow-methods']).toContain('POST');
    expect(response.headers['access-control-allow-headers']).toContain('content-type');
    expect(response.headers['access-control-max-age']).toBe('600');
    const privatePreflight = await app.inject({
      method: 'OPTIONS',
      url: '/private',
      headers: { origin: ALLOWED, 'access-control-request-method': 'GET' },
    });
    expect(privatePreflight.statusCode).toBe(204);
  });

  it('a wildcard (development only) allows any origin but never with credentials', async () => {
    const app = await start({ env: { CORS_ORIGINS: '*' } });
    const response = await app.inject({ url: '/api/things', headers: { origin: 'https://anyone.example' } });
    expect(response.headers['access-control-allow-origin']).toBe('*');
    expect(response.headers['access-control-allow-credentials']).toBeUndefined();
  });
});

describe('HTTPS policy', () => {
  const production = (options: Partial<TestAppOptions> = {}) =>
    start({
      env: { TRUSTED_PROXIES: '127.0.0.1', ...options.env },
      configure: (config) => {
        config.protection.https = 'redirect';
      },
    });

  it('redirects plain-HTTP GET and HEAD with 308 and refuses other methods', async () => {
    const app = await production();
    const get = await app.inject({
      url: '/api/things?a=1',
      headers: { host: 'api.example.com', 'x-forwarded-proto': 'http' },
    });
    expect(get.statusCode).toBe(308);
    expect(get.headers.location).toBe('https://api.example.com/api/things?a=1');
    const head = await app.inject({
      method: 'HEAD',
      url: '/api/things',
      headers: { host: 'api.example.com' },
    });
    expect(head.statusCode).toBe(308);
    const post = await app.inject({
      method: 'POST',
      url: '/api/things',
      headers: { host: 'api.example.com' },
    });
    expect(post.statusCode).toBe(403);
    expect(post.json().error).toBe('https_required');
  });

  it('believes X-Forwarded-Proto only from a trusted proxy', async () => {
    const app = await production();
    const viaProxy = await app.inject({ url: '/api/things', headers: { 'x-forwarded-proto': 'https' } });
    expect(viaProxy.statusCode).toBe(200);
    await current?.close();
    const untrusted = await start({
      configure: (config) => {
        config.protection.https = 'redirect';
      },
    });
    const spoofed = await untrusted.inject({ url: '/api/things', headers: { 'x-forwarded-proto': 'https' } });
    expect(spoofed.statusCode).toBe(308);
  });

  it('never redirects to a forged host, and lets load-balancer probes through', async () => {
    const app = await production();
    for (const host of ['evil.example/@x', 'a b', 'user@evil.example', 'evil.example\\x']) {
      const response = await app.inject({ url: '/api/things', headers: { host } });
      expect(response.statusCode, host).toBe(400);
      expect(response.headers.location).toBeUndefined();
    }
    expect((await app.inject({ url: '/health/live' })).statusCode).toBe(200);
  });
});

describe('request limits', () => {
  it('414 for a long URL, 431 for too many headers, 400 for too many parameters', async () => {
    const app = await start();
    const longUrl = await app.inject({ url: `/api/things?q=${'a'.repeat(5000)}` });
    expect(longUrl.statusCode).toBe(414);
    expect(longUrl.json().error).toBe('uri_too_long');
    const headers = Object.fromEntries(Array.from({ length: 120 }, (_, i) => [`x-h${i}`, 'v']));
    const many = await app.inject({ url: '/api/things', headers });
    expect(many.statusCode).toBe(431);
    const params = Array.from({ length: 101 }, (_, i) => `p${i}=1`).join('&');
    const tooMany = await app.inject({ url: `/api/things?${params}` });
    expect(tooMany.statusCode).toBe(400);
    expect(tooMany.json().error).toBe('too_many_parameters');
    expect((await app.inject({ url: '/api/things?a=1&b=2' })).statusCode).toBe(200);
    const form = (payload: string) =>
      app.inject({
        method: 'POST',
        url: '/api/things',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload,
      });
    expect((await form('a=1&b=two')).statusCode).toBe(200);
    const tooManyFields = await form(params);
    expect(tooManyFields.statusCode).toBe(400);
    expect(tooManyFields.json().error).toBe('too_many_parameters');
  });

  it('400 for JSON nested too deep or with too many keys; 413 for a body over the limit', async () => {
    const app = await start();
    const deep = `${'['.repeat(120)}1${']'.repeat(120)}`;
    const tooDeep = await app.inject({
      method: 'POST',
      url: '/api/things',
      headers: { 'content-type': 'application/json' },
      payload: deep,
    });
    expect(tooDeep.statusCode).toBe(400);
    expect(tooDeep.json().error).toBe('json_too_deep');
    const wide = JSON.stringify(Object.fromEntries(Array.from({ length: 10_001 }, (_, i) => [`k${i}`, i])));
    const tooWide = await app.inject({
      method: 'POST',
      url: '/api/things',
      headers: { 'content-type': 'application/json' },
      payload: wide,
    });
    expect(tooWide.statusCode).toBe(400);
    expect(tooWide.json().error).toBe('json_too_many_keys');
    for (const poisoned of [
      '{"__proto__":{"admin":true}}',
      '{"a":{"constructor":{"prototype":{"admin":true}}}}',
    ]) {
      const response = await app.inject({
        method: 'POST',
        url: '/api/things',
        headers: { 'content-type': 'application/json' },
        payload: poisoned,
      });
      expect(response.statusCode, poisoned).toBe(400);
      expect(({} as Record<string, unknown>).admin).toBeUndefined();
    }
    const fine = await app.inject({ method: 'POST', url: '/api/things', payload: { a: [1, { b: 2 }] } });
    expect(fine.statusCode).toBe(200);
    const huge = await app.inject({
      method: 'POST',
      url: '/api/things',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ a: 'x'.repeat(1_100_000) }),
    });
    expect(huge.statusCode).toBe(413);
  });

  it('over a real socket: 431 for oversized headers and 408 for a client that never finishes them', async () => {
    const app = await start({
      configure: (config) => {
        config.protection.limits.headersTimeoutMs = 300;
      },
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const port = (app.server.address() as { port: number }).port;
    const big = await rawRequest(
      port,
      `GET /api/things HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    );
    expect(big).toMatch(/^HTTP\/1\.1 431 /);
    expect(big).toContain('"request_id"');
    const slow = await rawRequest(port, 'GET /api/things HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n', 5000);
    expect(slow).toMatch(/^HTTP\/1\.1 408 /);
  });
});

/** Sends raw bytes and collects the answer until the server closes the connection. */
function rawRequest(port: number, text: string, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text));
    let answer = '';
    socket.on('data', (chunk) => {
      answer += chunk.toString('latin1');
    });
    socket.on('close', () => resolve(answer));
    socket.on('error', (error) => (answer ? resolve(answer) : reject(error)));
    setTimeout(() => {
      socket.destroy();
      resolve(answer);
    }, timeoutMs).unref();
  });
}
