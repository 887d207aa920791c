import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BastionError, HttpErrors } from '../src/core/errors.ts';
import { startTestApp, type TestApp } from './support/app.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ONE_MIB = 1_048_576;
const SECRET = 'kaboom-7f3a-internal-detail';

const json = { 'content-type': 'application/json' };
const echoSchema = {
  body: {
    type: 'object',
    required: ['name'],
    additionalProperties: false,
    properties: { name: { type: 'string', maxLength: 10 }, count: { type: 'integer', minimum: 0 } },
  },
  querystring: { type: 'object', properties: { page: { type: 'integer', minimum: 1 } } },
} as const;

let handlerCalls = 0;
function routes(app: TestApp['app']) {
  app.post('/echo', { config: { auth: 'public' }, schema: echoSchema }, async (request) => {
    handlerCalls += 1;
    return request.body;
  });
  app.post('/raw', { config: { auth: 'public' } }, async (request) => {
    handlerCalls += 1;
    const body = request.body as Record<string, unknown>;
    return { keys: Object.keys(body ?? {}), polluted: ({} as Record<string, unknown>).polluted ?? null };
  });
  app.get('/boom', { config: { auth: 'public' } }, async () => {
    throw new Error(`${SECRET} at /srv/bastion/src/storage/database.ts:42:7`);
  });
  app.get('/boom-sync', { config: { auth: 'public' } }, () => {
    throw new TypeError(`${SECRET} cannot read properties of undefined`);
  });
  app.get('/boom-string', { config: { auth: 'public' } }, async () => {
    throw SECRET;
  });
  app.get('/boom-418', { config: { auth: 'public' } }, async () => {
    throw Object.assign(new Error(SECRET), { statusCode: 418 });
  });
  app.get('/boom-400', { config: { auth: 'public' } }, async () => {
    throw Object.assign(new Error(SECRET), { statusCode: 400 });
  });
  app.get('/conflict', { config: { auth: 'public' } }, async () => {
    throw new BastionError(HttpErrors.conflict, {
      message: 'Name already taken',
      details: { field: 'name' },
      headers: { 'retry-after': '3' },
    });
  });
}

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ routes });
});
afterAll(async () => {
  await t?.close();
});

function expectErrorShape(res: { statusCode: number; headers: Record<string, unknown>; json(): unknown }) {
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = res.json() as Record<string, unknown>;
  expect(typeof body.error).toBe('string');
  expect(typeof body.message).toBe('string');
  expect(body.request_id).toBe(res.headers['x-request-id']);
  expect(body.request_id).toMatch(UUID);
  return body;
}

async function settle() {
  await new Promise((resolve) => setImmediate(resolve));
}

describe('400 malformed JSON', () => {
  it.each([
    ['truncated', '{"name":'],
    ['trailing comma', '{"name":"a",}'],
    ['single quotes', "{'name':'a'}"],
    ['not json at all', 'name=a'],
    ['empty body', ''],
  ])('%s → 400 malformed_json', async (_name, payload) => {
    const res = await t.app.inject({ method: 'POST', url: '/echo', headers: json, payload });
    expect(res.statusCode).toBe(400);
    const body = expectErrorShape(res);
    expect(body).toEqual({
      error: 'malformed_json',
      message: 'Request body is not valid JSON',
      request_id: res.headers['x-request-id'],
    });
  });

  it('does not echo the parser message or the body back', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/echo',
      headers: json,
      payload: '{"name": <img src=x onerror=alert(1)>}',
    });
    expect(res.statusCode).toBe(400);
    expect(res.body).not.toContain('onerror');
    expect(res.body).not.toMatch(/Unexpected token|position/);
  });
});

describe('400 validation_failed', () => {
  it('lists what is wrong in details', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/echo',
      headers: json,
      payload: { name: 'far-too-long-a-name' },
    });
    expect(res.statusCode).toBe(400);
    const body = expectErrorShape(res);
    expect(body.error).toBe('validation_failed');
    expect(body.message).toBe('The request does not match the schema');
    expect(body.details).toEqual([{ path: 'body/name', message: 'must NOT have more than 10 characters' }]);
  });

  it('names a missing required property', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/echo', headers: json, payload: { count: 1 } });
    expect(res.statusCode).toBe(400);
    const details = expectErrorShape(res).details as Array<{ path: string; message: string }>;
    expect(details).toHaveLength(1);
    expect(details[0]?.path).toBe('body');
    expect(details[0]?.message).toMatch(/required property 'name'/);
  });

  it('refuses undeclared properties instead of handing them to the handler (mass assignment)', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/echo',
      headers: json,
      payload: { name: 'ok', isAdmin: true },
    });
    // Not silently dropped either: the caller learns the field was not taken.
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'validation_failed' });
  });

  it('rejects a wrong value with its path', async () => {
    const typed = await t.app.inject({
      method: 'POST',
      url: '/echo',
      headers: json,
      payload: { name: 'ok', count: -1 },
    });
    expect(typed.statusCode).toBe(400);
    expect(typed.json().details[0].path).toBe('body/count');
  });

  it('validates the query string too', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/echo?page=0',
      headers: json,
      payload: { name: 'ok' },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().details).toEqual([{ path: 'querystring/page', message: 'must be >= 1' }]);
  });

  it('accepts a valid body (the route works at all)', async () => {
    const before = handlerCalls;
    const res = await t.app.inject({
      method: 'POST',
      url: '/echo',
      headers: json,
      payload: { name: 'ok', count: 2 },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ name: 'ok', count: 2 });
    expect(handlerCalls).toBe(before + 1);
  });
});

describe('prototype poisoning', () => {
  it.each([
    ['__proto__', '{"name":"a","__proto__":{"polluted":"yes"}}'],
    ['nested __proto__', '{"name":"a","nested":{"__proto__":{"polluted":"yes"}}}'],
    ['escaped __proto__', '{"name":"a","\\u005f\\u005fproto__":{"polluted":"yes"}}'],
    ['constructor.prototype', '{"name":"a","constructor":{"prototype":{"polluted":"yes"}}}'],
  ])('rejects a %s body with 400 before any handler runs', async (_name, payload) => {
    const before = handlerCalls;
    for (const url of ['/raw', '/echo']) {
      const res = await t.app.inject({ method: 'POST', url, headers: json, payload });
      expect(res.statusCode).toBe(400);
      expect(expectErrorShape(res).error).toBe('malformed_json');
    }
    expect(handlerCalls).toBe(before);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  it('still accepts harmless keys that merely look similar', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/raw',
      headers: json,
      payload: '{"proto":1,"constructor_name":"x","prototype":2}',
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ keys: ['proto', 'constructor_name', 'prototype'], polluted: null });
  });
});

describe('404 not_found', () => {
  it('answers an unknown route with the JSON shape', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/does/not/exist' });
    expect(res.statusCode).toBe(404);
    expect(expectErrorShape(res)).toEqual({
      error: 'not_found',
      message: 'No route for GET /does/not/exist',
      request_id: res.headers['x-request-id'],
    });
  });

  it('answers an unknown method on a known path with 404, not the handler', async () => {
    const res = await t.app.inject({ method: 'DELETE', url: '/health/live' });
    expect(res.statusCode).toBe(404);
    expect(res.json().error).toBe('not_found');
  });

  it('never echoes the query string (it may carry secrets)', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/nope?access_token=supersecret123' });
    expect(res.statusCode).toBe(404);
    expect(res.body).not.toContain('supersecret123');
  });

  it('bounds the echoed path', async () => {
    // Long, but under the URL limit (4096 by default; longer ones get 414).
    const res = await t.app.inject({ method: 'GET', url: `/${'a'.repeat(4000)}` });
    expect(res.statusCode).toBe(404);
    expect(res.json().message.length).toBeLessThanOrEqual('No route for GET '.length + 201);
  });
});

describe('400 for URLs the router cannot decode', () => {
  it.each(['/%', '/%E0%A4%A', '/health/%ZZ'])('%s → 400 bad_request with the JSON shape', async (url) => {
    const res = await t.app.inject({ method: 'GET', url });
    expect(res.statusCode).toBe(400);
    expect(expectErrorShape(res)).toEqual({
      error: 'bad_request',
      message: 'The request is not valid',
      request_id: res.headers['x-request-id'],
    });
    // Not Fastify's own body, which echoes the path and its internal code.
    expect(res.body).not.toContain('FST_ERR');
  });
});

describe('413 payload_too_large', () => {
  it('rejects a body just over the default 1 MiB', async () => {
    const payload = JSON.stringify({ name: 'a', pad: 'x'.repeat(ONE_MIB) });
    const res = await t.app.inject({ method: 'POST', url: '/raw', headers: json, payload });
    expect(res.statusCode).toBe(413);
    expect(expectErrorShape(res)).toEqual({
      error: 'payload_too_large',
      message: 'Request body is larger than allowed',
      request_id: res.headers['x-request-id'],
    });
  });

  it('accepts a body of exactly 1 MiB', async () => {
    const overhead = JSON.stringify({ pad: '' }).length;
    const payload = JSON.stringify({ pad: 'x'.repeat(ONE_MIB - overhead) });
    expect(Buffer.byteLength(payload)).toBe(ONE_MIB);
    const res = await t.app.inject({ method: 'POST', url: '/raw', headers: json, payload });
    expect(res.statusCode).toBe(200);
  });

  describe('with BASTION_BODY_LIMIT=100', () => {
    let small: TestApp;
    let port = 0;
    beforeAll(async () => {
      small = await startTestApp({ env: { BASTION_BODY_LIMIT: '100' }, routes });
      await small.app.listen({ host: '127.0.0.1', port: 0 });
      port = (small.app.server.address() as AddressInfo).port;
    });
    afterAll(async () => {
      await small?.close();
    });

    const bodyOf = (size: number) => {
      const overhead = JSON.stringify({ pad: '' }).length;
      return JSON.stringify({ pad: 'x'.repeat(size - overhead) });
    };

    it('takes the limit from the environment', () => {
      expect(small.config.server.bodyLimit).toBe(100);
    });

    it('accepts exactly 100 bytes and rejects 101', async () => {
      const ok = await small.app.inject({ method: 'POST', url: '/raw', headers: json, payload: bodyOf(100) });
      expect(ok.statusCode).toBe(200);
      const over = await small.app.inject({
        method: 'POST',
        url: '/raw',
        headers: json,
        payload: bodyOf(101),
      });
      expect(over.statusCode).toBe(413);
      expect(expectErrorShape(over).error).toBe('payload_too_large');
    });

    /** A real request over the socket; `chunked` sends no Content-Length at all. */
    function send(
      body: string,
      chunked: boolean,
    ): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
      return new Promise((resolve, reject) => {
        const request = http.request(
          {
            host: '127.0.0.1',
            port,
            method: 'POST',
            path: '/raw',
            agent: false,
            headers: chunked
              ? { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }
              : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
          },
          (response) => {
            let text = '';
            response.setEncoding('utf8');
            response.on('data', (chunk: string) => {
              text += chunk;
            });
            response.on('end', () =>
              resolve({ status: response.statusCode ?? 0, headers: response.headers, body: text }),
            );
          },
        );
        // The server may answer and close before the whole body is written.
        request.on('error', reject);
        if (chunked) {
          for (let i = 0; i < body.length; i += 50) request.write(body.slice(i, i + 50));
          request.end();
        } else {
          request.end(body);
        }
      });
    }

    it('rejects an oversized Content-Length over a real socket with the JSON shape', async () => {
      const res = await send(bodyOf(5000), false);
      expect(res.status).toBe(413);
      const body = JSON.parse(res.body) as Record<string, unknown>;
      expect(body.error).toBe('payload_too_large');
      expect(body.request_id).toBe(res.headers['x-request-id']);
    });

    it('rejects an oversized chunked body that declares no length', async () => {
      const res = await send(bodyOf(5000), true);
      expect(res.status).toBe(413);
      expect(JSON.parse(res.body).error).toBe('payload_too_large');
    });
  });
});

describe('415 unsupported_media_type', () => {
  // Form bodies are parsed (API protection inspects them), so they are not among these.
  it.each(['application/xml', 'text/csv', 'multipart/form-data; boundary=x'])(
    '%s → 415',
    async (contentType) => {
      const before = handlerCalls;
      const res = await t.app.inject({
        method: 'POST',
        url: '/raw',
        headers: { 'content-type': contentType },
        payload: 'a=1',
      });
      expect(res.statusCode).toBe(415);
      expect(expectErrorShape(res)).toEqual({
        error: 'unsupported_media_type',
        message: 'Content-Type is not supported',
        request_id: res.headers['x-request-id'],
      });
      expect(handlerCalls).toBe(before);
    },
  );
});

describe('500 internal_error', () => {
  it.each(['/boom', '/boom-sync', '/boom-string', '/boom-418'])(
    '%s reveals nothing and is logged with the request id',
    async (url) => {
      const before = t.logs.raw.length;
      const res = await t.app.inject({
        method: 'GET',
        url,
        headers: { 'x-request-id': `err-${url.slice(1)}` },
      });
      await settle();
      expect(res.statusCode).toBe(500);
      expect(res.json()).toEqual({
        error: 'internal_error',
        message: 'Internal server error',
        request_id: `err-${url.slice(1)}`,
      });
      expect(res.body).not.toContain(SECRET);
      expect(res.body).not.toMatch(/stack|\/srv\/|\.ts\b|node_modules| at /);
      expect(Object.keys(res.json()).sort()).toEqual(['error', 'message', 'request_id']);

      const lines = t.logs.lines.slice(before);
      const errorLines = lines.filter((line) => line.level === 50);
      expect(errorLines).toHaveLength(1);
      expect(errorLines[0]?.request_id).toBe(`err-${url.slice(1)}`);
      expect(errorLines[0]?.msg).toBe('request failed');
      // The operator gets what the client does not.
      expect(JSON.stringify(errorLines[0])).toContain(SECRET);
      const access = lines.find((line) => line.msg === 'request completed');
      expect(access).toMatchObject({ status: 500, request_id: `err-${url.slice(1)}` });
    },
  );

  it('maps a library error with a 4xx status to the generic message, not its own', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/boom-400' });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({
      error: 'bad_request',
      message: 'The request is not valid',
      request_id: res.headers['x-request-id'],
    });
    expect(res.body).not.toContain(SECRET);
  });
});

describe('BastionError', () => {
  it('keeps its status, message, details and headers', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/conflict' });
    expect(res.statusCode).toBe(409);
    expect(res.headers['retry-after']).toBe('3');
    expect(res.json()).toEqual({
      error: 'conflict',
      message: 'Name already taken',
      request_id: res.headers['x-request-id'],
      field: 'name',
    });
  });
});

describe('error responses in general', () => {
  const requests: InjectOptions[] = [
    { method: 'GET', url: '/nope' },
    { method: 'POST', url: '/echo', headers: json, payload: '{' },
    { method: 'POST', url: '/echo', headers: json, payload: '{}' },
    { method: 'GET', url: '/boom' },
  ];
  it('never include a stack or Fastify internals', async () => {
    for (const request of requests) {
      const res = await t.app.inject(request);
      expect(res.statusCode).toBeGreaterThanOrEqual(400);
      expect(res.body).not.toMatch(/"stack"|"statusCode"|"code"|FST_/);
    }
  });
});
