import { randomBytes } from 'node:crypto';
import type { FastifyRequest, InjectOptions } from 'fastify';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load-config.ts';
import type { Principal } from '../src/core/principal.ts';
import { logFormat } from '../src/observability/logger.ts';
import { REDACTED } from '../src/observability/redaction.ts';
import { startTestApp, type TestApp, type TestAppOptions } from './support/app.ts';
import { postgresAvailable } from './support/services.ts';

const pgUp = await postgresAvailable();

type Line = Record<string, unknown>;

const USER: Principal = { kind: 'user', id: 'u-123', orgId: 'o-456', permissions: new Set(['items:read']) };
const API_KEY: Principal = {
  kind: 'api_key',
  id: 'k-789',
  orgId: 'o-456',
  permissions: new Set(['items:read']),
};

/** Test authenticator: the principal named by a test header, or nobody. */
const authenticate = async (request: FastifyRequest): Promise<Principal | null> => {
  const who = request.headers['x-test-principal'];
  if (who === 'user') return USER;
  if (who === 'api_key') return API_KEY;
  return null;
};

const routes: TestAppOptions['routes'] = (app) => {
  app.get('/items/:id', { config: { auth: 'public' } }, async (request) => ({
    id: (request.params as { id: string }).id,
  }));
  app.get('/private/:id', { config: { auth: 'items:read' } }, async () => ({ ok: true }));
  app.get('/admin', { config: { auth: 'admin:write' } }, async () => ({ ok: true }));
  app.post('/echo', { config: { auth: 'public' } }, async (request) => ({
    got: Object.keys(request.body ?? {}),
  }));
  app.get('/boom', { config: { auth: 'public' } }, async () => {
    throw new Error('kaboom');
  });
};

let current: TestApp | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

const accessLines = (lines: Line[]) => lines.filter((l) => l.msg === 'request completed');

describe('access log', () => {
  it('writes exactly one JSON line per request with the request facts', async () => {
    current = await startTestApp({ routes, authenticate });
    const { app, logs } = current;
    const requests: Array<{
      inject: InjectOptions;
      expect: Partial<Line>;
    }> = [
      {
        inject: { url: '/items/7?q=1' },
        expect: { method: 'GET', route: '/items/:id', status: 200, user_id: null, org_id: null },
      },
      {
        inject: { url: '/private/9', headers: { 'x-test-principal': 'user' } },
        expect: { method: 'GET', route: '/private/:id', status: 200, user_id: 'u-123', org_id: 'o-456' },
      },
      {
        inject: { url: '/private/9', headers: { 'x-test-principal': 'api_key' } },
        expect: { route: '/private/:id', status: 200, user_id: null, api_key_id: 'k-789', org_id: 'o-456' },
      },
      {
        inject: { url: '/private/9' },
        expect: { route: '/private/:id', status: 401, user_id: null, org_id: null },
      },
      {
        inject: { url: '/admin', headers: { 'x-test-principal': 'user' } },
        expect: { route: '/admin', status: 403, user_id: 'u-123', org_id: 'o-456' },
      },
      {
        inject: { method: 'POST', url: '/echo', payload: { a: 1 } },
        expect: { method: 'POST', route: '/echo', status: 200 },
      },
      {
        inject: {
          method: 'POST',
          url: '/echo',
          payload: '{"a":',
          headers: { 'content-type': 'application/json' },
        },
        expect: { method: 'POST', route: '/echo', status: 400 },
      },
      {
        inject: { method: 'POST', url: '/echo', payload: 'x', headers: { 'content-type': 'text/x-unknown' } },
        expect: { method: 'POST', route: '/echo', status: 415 },
      },
      { inject: { url: '/boom' }, expect: { route: '/boom', status: 500, user_id: null } },
      { inject: { url: '/nope/abc?secret=1' }, expect: { route: null, path: '/nope/abc', status: 404 } },
      {
        inject: { method: 'HEAD', url: '/items/1' },
        expect: { method: 'HEAD', route: '/items/:id', status: 200 },
      },
      { inject: { url: '/health/live' }, expect: { route: '/health/live', status: 200 } },
    ];

    const ids: string[] = [];
    for (const request of requests) {
      const res = await app.inject(request.inject);
      const id = res.headers['x-request-id'];
      expect(typeof id).toBe('string');
      ids.push(id as string);
    }
    expect(new Set(ids).size).toBe(requests.length);

    const lines = accessLines(logs.lines);
    expect(lines).toHaveLength(requests.length);
    requests.forEach((request, index) => {
      const mine = lines.filter((l) => l.request_id === ids[index]);
      expect(mine, JSON.stringify(request.inject)).toHaveLength(1);
      const line = mine[0]!;
      expect(line, JSON.stringify(request.inject)).toMatchObject(request.expect);
      expect(line.level).toBe(30);
      // Epoch milliseconds: cheaper to write than ISO text, and every log tool reads it.
      expect(typeof line.time).toBe('number');
      expect(Math.abs((line.time as number) - Date.now())).toBeLessThan(3_600_000);
      expect(typeof line.duration_ms).toBe('number');
      expect(line.duration_ms as number).toBeGreaterThanOrEqual(0);
      expect(line.client_ip).toBe('127.0.0.1');
      expect(line).toHaveProperty('user_id');
      expect(line).toHaveProperty('org_id');
      expect(typeof line.method).toBe('string');
    });
    // The query string never becomes part of a logged path.
    expect(lines.some((l) => String(l.path ?? '').includes('?'))).toBe(false);
    // The 500 is logged once as an error, with the same request id, besides its access line.
    const failures = logs.lines.filter((l) => l.msg === 'request failed');
    expect(failures).toHaveLength(1);
    expect(failures[0]!.level).toBe(50);
    const boom = requests.findIndex((r) => r.expect.route === '/boom');
    expect(failures[0]!.request_id).toBe(ids[boom]);
  });

  it('reads the same whether written directly or through the cleaning pass', async () => {
    // A matched route's line is written directly when its request id and client IP are
    // well-formed; a client IP that is not an address (a trusted proxy passing on whatever the
    // client sent) sends the line through the cleaning pass, which masks what it finds.
    current = await startTestApp({ routes, authenticate, env: { TRUSTED_PROXIES: '127.0.0.1' } });
    const { app, logs } = current;
    const cases = [
      { url: '/private/1', headers: { 'x-test-principal': 'user' } },
      { url: '/private/1', headers: { 'x-test-principal': 'api_key' } },
      { url: '/private/1', headers: {} },
      { url: '/items/1', headers: {} },
    ];
    for (const { url, headers } of cases) {
      const direct = await app.inject({ url, headers: { ...headers, 'x-forwarded-for': '203.0.113.9' } });
      const cleaned = await app.inject({
        url,
        headers: { ...headers, 'x-forwarded-for': 'jane.doe@example.com' },
      });
      const lineOf = (id: unknown) => accessLines(logs.lines).find((line) => line.request_id === id)!;
      const a = lineOf(direct.headers['x-request-id']);
      const b = lineOf(cleaned.headers['x-request-id']);
      expect(a.client_ip).toBe('203.0.113.9');
      expect(b.client_ip).toBe('j***@example.com');
      const comparable = (line: Line) => {
        const { request_id: _id, time: _time, duration_ms: _ms, client_ip: _ip, ...rest } = line;
        return rest;
      };
      expect(Object.keys(a), url).toEqual(Object.keys(b));
      expect(comparable(a), url).toEqual(comparable(b));
    }
  });

  it('keeps one line per request under concurrency', async () => {
    current = await startTestApp({ routes, authenticate });
    const { app, logs } = current;
    const responses = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        app.inject({ url: i % 3 === 0 ? `/missing/${i}` : i % 3 === 1 ? `/items/${i}` : '/boom' }),
      ),
    );
    const lines = accessLines(logs.lines);
    expect(lines).toHaveLength(60);
    const ids = responses.map((res) => res.headers['x-request-id']);
    expect(new Set(lines.map((l) => l.request_id))).toEqual(new Set(ids));
  });
});

describe('log format', () => {
  it('chooses JSON outside development and pretty lines in development (format auto)', async () => {
    const config = (env: Record<string, string>) => loadConfig({ file: null, env });
    expect(logFormat(await config({ NODE_ENV: 'development' }))).toBe('pretty');
    expect(logFormat(await config({ NODE_ENV: 'test' }))).toBe('json');
    expect(logFormat(await config({ NODE_ENV: 'production' }))).toBe('json');
    expect(logFormat(await config({ NODE_ENV: 'development', BASTION_LOG_FORMAT: 'json' }))).toBe('json');
    expect(logFormat(await config({ NODE_ENV: 'production', BASTION_LOG_FORMAT: 'pretty' }))).toBe('pretty');
  });

  it('writes only JSON lines in test mode with the default (auto) format', async () => {
    current = await startTestApp({ routes, env: { BASTION_LOG_FORMAT: undefined } });
    expect(current.config.logging.format).toBe('auto');
    await current.app.inject({ url: '/items/1' });
    expect(current.logs.raw.length).toBeGreaterThan(0);
    for (const raw of current.logs.raw) expect(() => JSON.parse(raw), raw).not.toThrow();
    expect(accessLines(current.logs.lines)).toHaveLength(1);
  });

  it('writes only JSON lines in production and never logs the master key or metrics token', async () => {
    const masterKey = randomBytes(32).toString('base64');
    const metricsToken = randomBytes(32).toString('hex');
    current = await startTestApp({
      routes,
      migrate: true,
      env: {
        NODE_ENV: 'production',
        BASTION_LOG_FORMAT: undefined,
        BASTION_MASTER_KEY: masterKey,
        BASTION_METRICS_TOKEN: metricsToken,
      },
    });
    const { app, logs } = current;
    await app.inject({ url: '/items/1' });
    await app.inject({ url: '/boom' });
    await app.inject({ url: '/metrics', headers: { authorization: `Bearer ${metricsToken}` } });
    expect(logs.raw.length).toBeGreaterThanOrEqual(4); // migrations, three access lines, the error
    for (const raw of logs.raw) expect(() => JSON.parse(raw), raw).not.toThrow();
    expect(accessLines(logs.lines)).toHaveLength(3);
    expect(logs.text).not.toContain(masterKey);
    expect(logs.text).not.toContain(metricsToken);
  });
});

/** A fresh random secret; the prefix tells which planting leaked when an assertion fails. */
const plant = (label: string) => `${label}${randomBytes(12).toString('hex')}`;

describe.each([
  { engine: 'SQLite', database: 'sqlite' as const, skip: false },
  { engine: 'PostgreSQL', database: 'postgres' as const, skip: !pgUp },
])('secrets never reach the logs ($engine)', ({ database, skip }) => {
  it.skipIf(skip)('a whole session with planted secrets leaves none of them in any log line', async () => {
    const b64 = () => randomBytes(18).toString('base64url');
    const jwt = `eyJ${b64()}.${b64()}.${b64()}`;
    const secrets = {
      cookieSession: plant('cookiesess'),
      cookieCsrf: plant('cookiecsrf'),
      apiKey: `bst_${plant('apikey')}`,
      queryToken: plant('qtoken'),
      queryPassword: plant('qpassword'),
      bodyPassword: plant('bodypw'),
      bodyNewPassword: plant('bodynewpw'),
      bodyRefresh: plant('bodyrefresh'),
      dumpPassword: plant('dumppw'),
      dumpCredential: plant('dumpcred'),
      errorUrlPassword: plant('errurlpw'),
      errorBearer: plant('errbearer'),
      unknownQuery: plant('unknownq'),
      unknownQueryPassword: plant('unknownqpw'),
      malformedBody: plant('malformed'),
      basicPassword: plant('basicpw'),
      dbParam: plant('dbparam'),
    };
    const basic = Buffer.from(`admin:${secrets.basicPassword}`).toString('base64');

    current = await startTestApp({
      database,
      env: { BASTION_SLOW_QUERY_MS: '0', LOG_LEVEL: 'trace' },
      authenticate: async (request) => (request.headers.authorization === `Bearer ${jwt}` ? USER : null),
      routes: (app) => {
        app.get('/items/:id', { config: { auth: 'public' } }, async () => ({ ok: true }));
        app.get('/private', { config: { auth: 'items:read' } }, async () => ({ ok: true }));
        app.post('/debug', { config: { auth: 'public' } }, async (request) => {
          const s = secrets.dumpPassword;
          request.log.info(
            { user: { password: s, credentials: { k: s } }, headers: request.headers },
            'debug dump',
          );
          request.log.info({ body: request.body, url: request.url }, 'body dump');
          request.log.debug(`raw body ${JSON.stringify(request.body)}`);
          return { ok: true };
        });
        app.get('/fail', { config: { auth: 'public' } }, async () => {
          throw new Error(
            `connect failed postgres://admin:${secrets.errorUrlPassword}@db/x Bearer ${secrets.errorBearer}`,
          );
        });
      },
    });
    const { app, logs } = current;
    const credentialHeaders = {
      authorization: `Bearer ${jwt}`,
      cookie: `session=${secrets.cookieSession}; csrf=${secrets.cookieCsrf}`,
      'x-api-key': secrets.apiKey,
    };

    const bodies: string[] = [];
    const send = async (options: InjectOptions) => {
      const res = await app.inject(options);
      bodies.push(res.body, JSON.stringify(res.headers));
      return res;
    };

    expect(
      (
        await send({
          url: `/items/1?token=${secrets.queryToken}&password=${secrets.queryPassword}`,
          headers: credentialHeaders,
        })
      ).statusCode,
    ).toBe(200);
    expect((await send({ url: '/private', headers: credentialHeaders })).statusCode).toBe(200);
    expect((await send({ url: '/private', headers: { authorization: `Basic ${basic}` } })).statusCode).toBe(
      401,
    );
    expect(
      (
        await send({
          method: 'POST',
          url: `/debug?token=${secrets.queryToken}&password=${secrets.queryPassword}`,
          headers: credentialHeaders,
          payload: {
            email: 'someone@example.com',
            password: secrets.bodyPassword,
            new_password: secrets.bodyNewPassword,
            refresh_token: secrets.bodyRefresh,
            credentials: { k: secrets.dumpCredential },
          },
        })
      ).statusCode,
    ).toBe(200);
    expect(
      (
        await send({
          method: 'POST',
          url: '/debug',
          headers: { 'content-type': 'application/json' },
          payload: `{"password":"${secrets.malformedBody}",`,
        })
      ).statusCode,
    ).toBe(400);
    expect((await send({ url: '/fail', headers: credentialHeaders })).statusCode).toBe(500);
    expect(
      (
        await send({
          url: `/no/such/route?token=${secrets.unknownQuery}&password=${secrets.unknownQueryPassword}`,
          headers: credentialHeaders,
        })
      ).statusCode,
    ).toBe(404);

    const db = app.bastion.database.db;
    await sql`select ${secrets.dbParam} as probe`.execute(db);
    await db
      .insertInto('instance_settings')
      .values({ key: 'planted', value: secrets.dbParam, updated_at: new Date().toISOString() })
      .execute();

    // None of the planted secrets, nor any piece of the JWT, is anywhere in the logs.
    const text = logs.text;
    const planted = [...Object.values(secrets), ...jwt.split('.'), basic];
    const leaked = planted.filter((s) => text.includes(s));
    expect(leaked).toEqual([]);
    // …nor echoed in any response.
    const echoed = planted.filter((s) => bodies.some((body) => body.includes(s)));
    expect(echoed).toEqual([]);

    // The lines are there (the test is not vacuous), with the secrets replaced.
    const lines = logs.lines;
    expect(accessLines(lines)).toHaveLength(7);
    const dump = lines.find((l) => l.msg === 'debug dump') as {
      user: Record<string, unknown>;
      headers: Record<string, unknown>;
    };
    expect(dump.user).toEqual({ password: REDACTED, credentials: REDACTED });
    expect(dump.headers.authorization).toBe(REDACTED);
    expect(dump.headers.cookie).toBe(REDACTED);
    expect(dump.headers['x-api-key']).toBe(REDACTED);
    expect(dump.headers.host).toBe('localhost:80');
    const bodyDump = lines.find((l) => l.msg === 'body dump') as {
      body: Record<string, unknown>;
      url: string;
    };
    expect(bodyDump.body).toEqual({
      email: 's***@example.com', // PII masking (privacy.maskEmails, on by default)
      password: REDACTED,
      new_password: REDACTED,
      refresh_token: REDACTED,
      credentials: REDACTED,
    });
    expect(bodyDump.url).toBe(`/debug?token=${REDACTED}&password=${REDACTED}`);
    expect(lines.some((l) => String(l.msg).startsWith('raw body {'))).toBe(true);
    const failure = lines.find((l) => l.msg === 'request failed') as {
      err: { message: string; stack: string };
    };
    expect(failure.err.message).toBe(`connect failed postgres://admin:${REDACTED}@db/x Bearer ${REDACTED}`);
    expect(failure.err.stack).toContain('connect failed postgres://admin:');
    const slow = lines.filter((l) => l.msg === 'slow database query');
    expect(slow.some((l) => /as "?probe"?/.test(String(l.sql)))).toBe(true);
    expect(accessLines(lines).find((l) => l.status === 404)).toMatchObject({ path: '/no/such/route' });
    expect(accessLines(lines).find((l) => l.route === '/private' && l.status === 200)).toMatchObject({
      user_id: USER.id,
      org_id: USER.orgId,
    });
  });
});
