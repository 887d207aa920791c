import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from './support/app.ts';
import { ADMIN, call, createUser, login, STRONG_PASSWORD, startIdentityApp } from './support/identity.ts';
import { uniqueName } from './support/services.ts';

const ORGS = '/api/v1/organizations';
const TOKEN = 'plant-token-7f3c9a1e5b';
const HEADER_SECRET = 'plant-header-42d8e0b6c1';
const EXTRA_SECRET = 'plant-extra-9a7b5c3d1e';
const PLANTED = [TOKEN, HEADER_SECRET, EXTRA_SECRET];

/** `count` credential entries `k0…`, each a string of `length` characters. */
function keys(count: number, length = 1): Array<[string, string]> {
  return Array.from({ length: count }, (_, n) => [`k${n}`, 'v'.repeat(length)]);
}

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A local receiver: `/ok` answers 204, `/echo` answers 500 echoing the request, `/hang` never answers. */
async function startReceiver(): Promise<{ server: Server; url: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => {
      body += chunk.toString('utf8');
    });
    request.on('end', () => {
      received.push({ path: request.url ?? '', headers: request.headers, body });
      if (request.url === '/hang') return;
      if (request.url === '/echo') {
        response.writeHead(500, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ headers: request.headers, body }));
        return;
      }
      response.writeHead(204).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received };
}

async function startApp(allowPrivate: boolean): Promise<{ t: TestApp; owner: string; org: string }> {
  const t = await startIdentityApp({
    env: { BASTION_OUTBOUND_ALLOW_PRIVATE: String(allowPrivate) },
    configure: (config) => {
      config.loadShedding.enabled = false;
      config.outbound.timeoutMs = 400;
      config.redis.keyPrefix = `${uniqueName('ref')}:`;
    },
  });
  const admin = (await login(t.app, ADMIN.email, ADMIN.password)).access_token;
  await createUser(t.app, admin, 'owner@integrations.test');
  const owner = (await login(t.app, 'owner@integrations.test', STRONG_PASSWORD)).access_token;
  const org = (await call(t.app, owner, 'POST', ORGS, { name: 'Hooks' })).json().id as string;
  return { t, owner, org };
}

describe('integration credentials and the test call', () => {
  let t: TestApp;
  let owner: string;
  let org: string;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const responses: LightMyRequestResponse[] = [];
  const as = async (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown) => {
    const response = await call(t.app, owner, method, url, payload);
    responses.push(response);
    return response;
  };
  const create = async (path: string) => {
    const response = await as('POST', `${ORGS}/${org}/integrations`, {
      name: `Hook ${path}`,
      type: 'webhook',
      url: `${receiver.url}${path}`,
      credentials: { token: TOKEN, headers: { 'X-Signature': HEADER_SECRET }, extra: EXTRA_SECRET },
    });
    expect(response.statusCode, response.body).toBe(201);
    return response.json() as { id: string };
  };

  beforeAll(async () => {
    receiver = await startReceiver();
    ({ t, owner, org } = await startApp(true));
  });
  afterAll(async () => {
    await t?.close();
    receiver?.server.closeAllConnections();
    receiver?.server.close();
  });

  it('pings the URL with the Bearer token, the extra headers and a JSON body', async () => {
    const integration = await create('/ok');
    const response = await as('POST', `${ORGS}/${org}/integrations/${integration.id}/test`);
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toEqual({ ok: true, status: 204, duration_ms: expect.any(Number) });
    const hit = receiver.received.at(-1)!;
    expect(hit.path).toBe('/ok');
    expect(hit.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(hit.headers['x-signature']).toBe(HEADER_SECRET);
    expect(hit.headers['content-type']).toBe('application/json');
    expect(JSON.parse(hit.body)).toMatchObject({ type: 'bastion.ping', integration_id: integration.id });

    const stored = (await as('GET', `${ORGS}/${org}/integrations/${integration.id}`)).json();
    expect(stored).toMatchObject({ last_test_status: '204', last_test_at: expect.any(String) });
    const audit = (await as('GET', `${ORGS}/${org}/audit-events?action=integration.test`)).json();
    expect(audit.items[0]).toMatchObject({ target: { id: integration.id }, outcome: 'success' });
  });

  it('reports a non-2xx answer with a short snippet that never echoes the credentials', async () => {
    const integration = await create('/echo');
    const response = await as('POST', `${ORGS}/${org}/integrations/${integration.id}/test`);
    const body = response.json();
    expect(body).toMatchObject({ ok: false, status: 500 });
    expect(body.response_snippet.length).toBeLessThanOrEqual(200);
    expect(body.response_snippet).toContain('[redacted]');
  });

  it('turns a receiver that never answers into ok:false timeout, not a 500', async () => {
    const integration = await create('/hang');
    const started = Date.now();
    const response = await as('POST', `${ORGS}/${org}/integrations/${integration.id}/test`);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      ok: false,
      status: null,
      duration_ms: expect.any(Number),
      error: 'timeout',
    });
    expect(Date.now() - started).toBeLessThan(5000);
    const audit = (await as('GET', `${ORGS}/${org}/audit-events?action=integration.test`)).json();
    expect(audit.items[0]).toMatchObject({ outcome: 'failure', details: { status: 'timeout' } });
  });

  it('turns a refused connection into ok:false connection_failed', async () => {
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as AddressInfo).port;
    closed.close();
    const integration = (
      await as('POST', `${ORGS}/${org}/integrations`, {
        name: 'Gone',
        type: 'webhook',
        url: `http://127.0.0.1:${port}/`,
        credentials: {},
      })
    ).json();
    const response = await as('POST', `${ORGS}/${org}/integrations/${integration.id}/test`);
    expect(response.json()).toMatchObject({ ok: false, status: null, error: 'connection_failed' });
  });

  it('needs the credentials again to move an integration to another origin', async () => {
    const integration = await create('/ok');
    const url = `${ORGS}/${org}/integrations/${integration.id}`;
    const moved = await as('PUT', url, { url: 'https://attacker.example/collect' });
    expect(moved.statusCode).toBe(400);
    expect((await as('GET', url)).json().url).toBe(`${receiver.url}/ok`);
    expect((await as('PUT', url, { url: `${receiver.url}/other` })).statusCode).toBe(200);
    const withCredentials = await as('PUT', url, {
      url: 'https://new.example/in',
      credentials: { token: 'new' },
    });
    expect(withCredentials.statusCode).toBe(200);
  });

  it('refuses credential headers the client must set itself', async () => {
    for (const headers of [
      { Host: 'evil.test' },
      { 'Content-Length': '1' },
      { 'Bad Name': 'x' },
      { a: 'x\r\ny' },
    ]) {
      const response = await as('POST', `${ORGS}/${org}/integrations`, {
        name: 'H',
        type: 'webhook',
        url: receiver.url,
        credentials: { headers },
      });
      expect(response.statusCode, JSON.stringify(headers)).toBe(400);
    }
  });

  it('refuses deep, oversized, open-ended or prototype-poisoning credentials with 400/413, never 500', async () => {
    const base = `${ORGS}/${org}/integrations`;
    const existing = await as('POST', base, {
      name: 'Kept',
      type: 'webhook',
      url: `${receiver.url}/ok`,
      credentials: { token: 'kept' },
    });
    expect(existing.statusCode).toBe(201);
    const one = `${base}/${existing.json().id}`;
    const count = async () => (await as('GET', `${base}?limit=200`)).json().items.length as number;
    const before = await count();
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    const envelope = (credentials: string) =>
      `{"name":"N","type":"webhook","url":"https://x.test/","credentials":${credentials}}`;
    const cases: Array<[string, 'POST' | 'PUT', string, number]> = [
      ['100k levels under a key', 'POST', envelope(`{"x":${deep}}`), 400],
      ['100k levels under headers', 'POST', envelope(`{"headers":{"a":${deep}}}`), 400],
      ['100k levels as the token', 'POST', envelope(`{"token":${deep}}`), 400],
      ['100k levels as the credentials', 'POST', envelope(deep), 400],
      ['100k levels on update', 'PUT', `{"credentials":{"x":${deep}}}`, 400],
      ['a nested object', 'POST', envelope('{"extra":{"deep":"x"}}'), 400],
      ['a nested object on update', 'PUT', '{"credentials":{"extra":{"deep":"x"}}}', 400],
      ['an array', 'POST', envelope(`{"x":[${Array(100_000).fill('0').join(',')}]}`), 400],
      ['a header that is an object', 'POST', envelope('{"headers":{"a":{"b":"c"}}}'), 400],
      ['too many keys', 'POST', envelope(JSON.stringify(Object.fromEntries(keys(51)))), 400],
      ['__proto__', 'POST', envelope('{"__proto__":{"token":"x"}}'), 400],
      ['constructor.prototype', 'POST', envelope('{"constructor":{"prototype":{"token":"x"}}}'), 400],
      ['headers.__proto__', 'POST', envelope('{"headers":{"__proto__":{"a":"b"}}}'), 400],
      [
        'more than 16 KiB',
        'POST',
        envelope(
          JSON.stringify({ headers: { a: 'x'.repeat(8000), b: 'y'.repeat(8000), c: 'z'.repeat(8000) } }),
        ),
        413,
      ],
      [
        'more than 16 KiB on update',
        'PUT',
        JSON.stringify({ credentials: Object.fromEntries(keys(40, 500)) }),
        413,
      ],
    ];
    for (const [label, method, payload, status] of cases) {
      const response = await t.app.inject({
        method,
        url: method === 'POST' ? base : one,
        headers: { authorization: `Bearer ${owner}`, 'content-type': 'application/json' },
        payload,
      });
      expect(response.statusCode, `${label}: ${response.body.slice(0, 200)}`).toBe(status);
      expect(response.json()).toMatchObject({ error: expect.any(String), request_id: expect.any(String) });
    }
    expect(await count()).toBe(before);
    // Flat values of every allowed kind, up to the limits, are kept.
    const flat = { token: 't', headers: { 'X-A': 'b' }, region: 'eu', port: 443, verify: true };
    expect((await as('PUT', one, { credentials: flat })).statusCode).toBe(200);
    expect((await as('PUT', one, { credentials: Object.fromEntries(keys(50)) })).statusCode).toBe(200);
    expect(t.logs.lines.filter((line) => line.level === 50)).toEqual([]);
  });

  it('never shows a credential in any response, log line, or in clear in the database', async () => {
    const list = await as('GET', `${ORGS}/${org}/integrations?limit=200`);
    expect(list.json().items.every((item: { has_credentials: boolean }) => item.has_credentials)).toBe(true);
    await as('GET', `${ORGS}/${org}/audit-events?limit=200`);
    expect(responses.length).toBeGreaterThan(10);
    for (const response of responses) {
      for (const secret of PLANTED) expect(response.body).not.toContain(secret);
    }
    for (const secret of PLANTED) expect(t.logs.text).not.toContain(secret);
    const { db } = t.app.bastion.database;
    const raw = JSON.stringify([
      await db.selectFrom('integrations').selectAll().execute(),
      await db.selectFrom('secret_versions').selectAll().execute(),
      await db.selectFrom('secrets').selectAll().execute(),
      await db.selectFrom('audit_events').selectAll().execute(),
    ]);
    expect(raw).toContain('integrations/');
    for (const secret of PLANTED) expect(raw).not.toContain(secret);
  });
});

describe('integration test call with private networks not allowed (the default)', () => {
  let t: TestApp;
  let owner: string;
  let org: string;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  beforeAll(async () => {
    receiver = await startReceiver();
    ({ t, owner, org } = await startApp(false));
  });
  afterAll(async () => {
    await t?.close();
    receiver?.server.close();
  });

  it('answers ok:false blocked_destination and sends nothing', async () => {
    for (const url of [`${receiver.url}/ok`, 'http://169.254.169.254/latest/meta-data/']) {
      const created = await call(t.app, owner, 'POST', `${ORGS}/${org}/integrations`, {
        name: 'Local',
        type: 'webhook',
        url,
        credentials: { token: TOKEN },
      });
      expect(created.statusCode).toBe(201);
      const response = await call(
        t.app,
        owner,
        'POST',
        `${ORGS}/${org}/integrations/${created.json().id}/test`,
      );
      expect(response.statusCode).toBe(200);
      expect(response.json()).toMatchObject({ ok: false, status: null, error: 'blocked_destination' });
    }
    expect(receiver.received).toEqual([]);
  });
});
