import { once } from 'node:events';
import net from 'node:net';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const grantAll = new Set(['monitoring:read']);

let t: TestApp;
let guardedCalls = 0;

beforeAll(async () => {
  t = await startTestApp({
    env: { BASTION_BODY_LIMIT: '1024' },
    authenticate: async (request) =>
      request.headers['x-test-user'] === 'allowed'
        ? { kind: 'user', id: 'u1', orgId: null, permissions: grantAll }
        : request.headers['x-test-user'] === 'weak'
          ? { kind: 'user', id: 'u2', orgId: null, permissions: new Set() }
          : null,
    routes: (app) => {
      app.post(
        '/echo',
        {
          config: { auth: 'public' },
          schema: { body: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } } },
        },
        async (request) => request.body,
      );
      app.get('/guarded', { config: { auth: 'monitoring:read' } }, async () => {
        guardedCalls += 1;
        return { ok: true };
      });
      app.get('/boom', { config: { auth: 'public' } }, async () => {
        throw new Error('handler exploded');
      });
      app.get('/unavailable', { config: { auth: 'public' } }, async () => {
        throw Object.assign(new Error('upstream gone'), { statusCode: 503 });
      });
    },
  });
});

afterAll(async () => {
  await t?.close();
});

/** Runs one request and returns it with every log line written while it ran. */
async function run(
  options: InjectOptions,
): Promise<{ res: LightMyRequestResponse; lines: Array<Record<string, unknown>> }> {
  const before = t.logs.raw.length;
  const res = await t.app.inject(options);
  // The access line is written on 'finish'; let it land.
  await new Promise((resolve) => setImmediate(resolve));
  const lines = t.logs.raw.slice(before).map((line) => JSON.parse(line) as Record<string, unknown>);
  return { res, lines };
}

function withId(id: string | string[] | undefined, options: InjectOptions = {}): InjectOptions {
  const headers = { ...(options.headers ?? {}) } as Record<string, string | string[]>;
  if (id !== undefined) headers['x-request-id'] = id;
  return { method: 'GET', url: '/health/live', ...options, headers };
}

describe('incoming X-Request-ID', () => {
  it.each([
    ['one character', 'a'],
    ['every allowed class', 'Az09._:-'],
    ['exactly 128 characters', 'r'.repeat(128)],
    ['a uuid', '6f1c1e7a-38a2-4cb8-9d25-0e5a4b1d2c3f'],
  ])('keeps %s and echoes it', async (_name, id) => {
    const { res, lines } = await run(withId(id));
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-request-id']).toBe(id);
    const access = lines.find((line) => line.msg === 'request completed');
    expect(access?.request_id).toBe(id);
  });

  it.each([
    ['129 characters', 'r'.repeat(129)],
    ['empty', ''],
    ['a space', 'abc def'],
    ['<script>', '<script>alert(1)</script>'],
    ['unicode', 'req-é'],
    ['cjk', '日本語'],
    ['CRLF header injection', 'ok\r\nSet-Cookie: session=evil'],
    ['LF header injection', 'ok\nX-Admin: true'],
    ['percent-encoded CRLF', 'ok%0d%0aSet-Cookie:%20session=evil'],
    ['a comma list', 'a,b'],
    ['a JSON fragment', '","level":60,"x":"'],
  ])('replaces %s with a generated id', async (_name, id) => {
    const { res, lines } = await run(withId(id));
    expect(res.statusCode).toBe(200);
    const echoed = res.headers['x-request-id'];
    expect(echoed).toMatch(UUID);
    expect(echoed).not.toBe(id);
    // Nothing of the attacker's value reaches the response headers or the log line.
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(res.headers['x-admin']).toBeUndefined();
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line.request_id).toBe(echoed);
    if (id.length > 3) expect(JSON.stringify(lines)).not.toContain(id);
  });

  it('replaces an array of two headers (neither is trusted)', async () => {
    const { res } = await run(withId(['first-id', 'second-id']));
    const echoed = res.headers['x-request-id'];
    expect(echoed).toMatch(UUID);
    expect(echoed).not.toBe('first-id');
    expect(echoed).not.toBe('second-id');
  });

  it('generates a different id for every request without one', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 5; i += 1) {
      const { res } = await run(withId(undefined));
      ids.add(String(res.headers['x-request-id']));
    }
    expect(ids.size).toBe(5);
    for (const id of ids) expect(id).toMatch(UUID);
  });

  it('replaces the same invalid id with different ids each time', async () => {
    const a = await run(withId('bad id'));
    const b = await run(withId('bad id'));
    expect(a.res.headers['x-request-id']).not.toBe(b.res.headers['x-request-id']);
  });
});

describe('X-Request-ID on every response', () => {
  const cases: Array<[number, string, InjectOptions]> = [
    [200, 'ok', { method: 'GET', url: '/health/live' }],
    [404, 'not_found', { method: 'GET', url: '/no/such/route' }],
    [
      400,
      'malformed_json',
      { method: 'POST', url: '/echo', headers: { 'content-type': 'application/json' }, payload: '{"name":' },
    ],
    [
      400,
      'validation_failed',
      { method: 'POST', url: '/echo', headers: { 'content-type': 'application/json' }, payload: '{}' },
    ],
    [400, 'bad_request', { method: 'GET', url: '/%' }],
    [
      413,
      'payload_too_large',
      {
        method: 'POST',
        url: '/echo',
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({ name: 'x'.repeat(2048) }),
      },
    ],
    [
      415,
      'unsupported_media_type',
      { method: 'POST', url: '/echo', headers: { 'content-type': 'application/xml' }, payload: '<a/>' },
    ],
    [401, 'unauthorized', { method: 'GET', url: '/guarded', headers: { authorization: 'Bearer forged' } }],
    [403, 'forbidden', { method: 'GET', url: '/guarded', headers: { 'x-test-user': 'weak' } }],
    [500, 'internal_error', { method: 'GET', url: '/boom' }],
    [503, 'service_unavailable', { method: 'GET', url: '/unavailable' }],
  ];

  it.each(cases)('%i %s: generated id in header, body and every log line', async (status, error, options) => {
    const { res, lines } = await run(options);
    expect(res.statusCode).toBe(status);
    const id = res.headers['x-request-id'];
    expect(id).toMatch(UUID);
    if (status >= 400) {
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.json()).toMatchObject({ error, request_id: id });
    }
    const access = lines.filter((line) => line.msg === 'request completed');
    expect(access).toHaveLength(1);
    expect(access[0]?.status).toBe(status);
    for (const line of lines) expect(line.request_id).toBe(id);
  });

  it.each(cases)(
    '%i %s: a valid incoming id is kept in header, body and every log line',
    async (status, error, options) => {
      const incoming = `test-${status}-${error}`;
      const { res, lines } = await run(withId(incoming, options));
      expect(res.statusCode).toBe(status);
      expect(res.headers['x-request-id']).toBe(incoming);
      if (status >= 400) expect(res.json().request_id).toBe(incoming);
      expect(lines.length).toBeGreaterThan(0);
      for (const line of lines) expect(line.request_id).toBe(incoming);
    },
  );

  it('puts the request id on both the error line and the access line of a 500', async () => {
    const { res, lines } = await run(withId('trace-500', { method: 'GET', url: '/boom' }));
    expect(res.statusCode).toBe(500);
    const errorLine = lines.find((line) => line.level === 50);
    const access = lines.find((line) => line.msg === 'request completed');
    expect(errorLine?.request_id).toBe('trace-500');
    expect(access?.request_id).toBe('trace-500');
    expect(res.json().request_id).toBe('trace-500');
  });

  it('keeps HEAD responses bodiless but with the id', async () => {
    const { res } = await run(withId('head-check', { method: 'HEAD', url: '/health/live' }));
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-request-id']).toBe('head-check');
    expect(res.body).toBe('');
  });

  it('does not let the guarded handler run for the 401/403 cases', () => {
    expect(guardedCalls).toBe(0);
  });
});

describe('over a real socket', () => {
  let port = 0;

  beforeAll(async () => {
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    const address = t.app.server.address();
    port = typeof address === 'object' && address ? address.port : 0;
  });

  /** Sends raw bytes and returns the raw response (the server closes the connection). */
  async function raw(request: string): Promise<string> {
    const socket = net.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write(request);
    let data = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      data += chunk;
    });
    await once(socket, 'close');
    return data;
  }

  function header(response: string, name: string): string[] {
    const head = response.split('\r\n\r\n')[0] ?? '';
    return head
      .split('\r\n')
      .slice(1)
      .filter((line) => line.toLowerCase().startsWith(`${name.toLowerCase()}:`))
      .map((line) => line.slice(name.length + 1).trim());
  }

  it('replaces two X-Request-ID headers (joined by Node) with one generated id', async () => {
    const response = await raw(
      'GET /health/live HTTP/1.1\r\nHost: x\r\nX-Request-ID: first\r\nX-Request-ID: second\r\nConnection: close\r\n\r\n',
    );
    expect(response).toMatch(/^HTTP\/1\.1 200/);
    const ids = header(response, 'x-request-id');
    expect(ids).toHaveLength(1);
    expect(ids[0]).toMatch(UUID);
  });

  it('keeps a valid id over the wire and sends it exactly once', async () => {
    const response = await raw(
      'GET /no/such HTTP/1.1\r\nHost: x\r\nX-Request-ID: wire-id-1\r\nConnection: close\r\n\r\n',
    );
    expect(response).toMatch(/^HTTP\/1\.1 404/);
    expect(header(response, 'x-request-id')).toEqual(['wire-id-1']);
    expect(response).toContain('"request_id":"wire-id-1"');
  });

  it('never reflects an injected header from a folded or bare-CR header value', async () => {
    // A bare CR inside a value: Node's parser refuses it, nothing of it may come back.
    const response = await raw(
      'GET /health/live HTTP/1.1\r\nHost: x\r\nX-Request-ID: ok\rSet-Cookie: evil=1\r\nConnection: close\r\n\r\n',
    );
    expect(response).toMatch(/^HTTP\/1\.1 400/);
    expect(header(response, 'set-cookie')).toEqual([]);
    expect(response).not.toContain('evil=1');
    // Even a request the parser refuses gets a generated id and the JSON error shape.
    const [id] = header(response, 'x-request-id');
    expect(id).toMatch(UUID);
    expect(JSON.parse(response.split('\r\n\r\n')[1] ?? '')).toEqual({
      error: 'bad_request',
      message: 'The request is not valid',
      request_id: id,
    });
  });

  it('answers oversized headers with 431, a generated id and the JSON error shape', async () => {
    const response = await raw(
      `GET /health/live HTTP/1.1\r\nHost: x\r\nX-Request-ID: keep-me\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    );
    expect(response).toMatch(/^HTTP\/1\.1 431/);
    const [id] = header(response, 'x-request-id');
    expect(id).toMatch(UUID);
    expect(JSON.parse(response.split('\r\n\r\n')[1] ?? '')).toMatchObject({
      error: 'headers_too_large',
      request_id: id,
    });
  });

  it('answers a garbage request line with 400 and a generated id', async () => {
    const response = await raw('HELLO THERE\r\n\r\n');
    expect(response).toMatch(/^HTTP\/1\.1 400/);
    expect(header(response, 'x-request-id')[0]).toMatch(UUID);
  });
});
