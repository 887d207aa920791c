import { randomBytes } from 'node:crypto';
import net from 'node:net';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { BUILD_INFO } from '../src/observability/build-info.ts';
import { createMetricsApp } from '../src/server/create-app.ts';
import { startTestApp, type TestApp, type TestAppOptions } from './support/app.ts';
import { promtool, withPromtool } from './support/promtool.ts';
import { postgresAvailable } from './support/services.ts';

const pgUp = await postgresAvailable();

/** Runs `promtool check metrics` on an exposition. */
const promtoolCheck = (text: string) => promtool(['check', 'metrics'], text);

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text exposition into samples (comments skipped). */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!match) throw new Error(`unparseable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1]!] = pair[2]!.replace(/\\(.)/g, (_m, c: string) => (c === 'n' ? '\n' : c));
    }
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** Samples of one metric whose labels include `labels`. */
function find(samples: Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([key, value]) => s.labels[key] === value),
  );
}

/** The summed value of matching samples (0 when none). */
function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return find(samples, name, labels).reduce((sum, s) => sum + s.value, 0);
}

async function scrape(app: FastifyInstance, headers: Record<string, string> = {}) {
  const res = await app.inject({ method: 'GET', url: '/metrics', headers });
  expect(res.statusCode).toBe(200);
  return { text: res.body, samples: parseExposition(res.body), contentType: res.headers['content-type'] };
}

const routes: TestAppOptions['routes'] = (app) => {
  app.get('/items/:id', { config: { auth: 'public' } }, async (request, reply) => {
    const { id } = request.params as { id: string };
    if (id === 'missing') return reply.code(404).send({ error: 'not_found' });
    return { id };
  });
  app.route({
    method: ['GET', 'POST'],
    url: '/multi',
    config: { auth: 'public' },
    handler: async () => ({ ok: true }),
  });
  app.get('/boom', { config: { auth: 'public' } }, async () => {
    throw new Error('boom');
  });
};

/** Some varied traffic so every label combination the app produces exists. */
async function traffic(app: FastifyInstance) {
  await app.inject({ url: '/items/1' });
  await app.inject({ url: '/items/missing' });
  await app.inject({ method: 'HEAD', url: '/items/2' });
  await app.inject({ method: 'POST', url: '/multi' });
  await app.inject({ url: '/multi' });
  await app.inject({ url: '/boom' });
  await app.inject({ url: '/does/not/exist?x="quoted"' });
  await app.inject({ method: 'PURGE', url: '/nothing-here' });
  await app.inject({ url: '/health/live' });
}

let current: TestApp | undefined;
async function start(options: TestAppOptions = {}): Promise<TestApp> {
  current = await startTestApp({ routes, ...options });
  return current;
}
afterEach(async () => {
  await current?.close();
  current = undefined;
});

describe('GET /metrics on SQLite', () => {
  it('serves HTTP, runtime, host, database and build metrics as Prometheus text', async () => {
    const { app } = await start();
    await traffic(app);
    const { text, samples, contentType } = await scrape(app);

    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(text).toContain('# TYPE http_server_request_duration_seconds histogram');
    expect(text).toContain('# TYPE http_server_active_requests gauge');
    expect(text).toContain('# TYPE db_client_operation_duration_seconds histogram');
    expect(text).toContain('# TYPE db_client_slow_queries_total counter');
    expect(text).toContain('# TYPE host_network_io_bytes_total counter');

    const present = [
      'http_server_request_duration_seconds_bucket',
      'http_server_request_duration_seconds_sum',
      'http_server_request_duration_seconds_count',
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_seconds',
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_utilization_ratio',
      'host_cpu_utilization_ratio',
      'host_memory_bytes',
      'host_disk_bytes',
      'db_client_operation_duration_seconds_count',
    ];
    if (process.platform === 'linux') present.push('host_network_io_bytes_total');
    for (const name of present) expect(find(samples, name), name).not.toEqual([]);

    // The scrape itself is the one request in flight.
    expect(total(samples, 'http_server_active_requests')).toBe(1);
    expect(total(samples, 'host_memory_bytes', { state: 'total' })).toBeGreaterThan(0);
    expect(total(samples, 'host_disk_bytes', { state: 'total' })).toBeGreaterThan(0);

    // Start-up ran migrations and the installation id: selects, inserts and creates, labelled.
    for (const operation of ['select', 'insert', 'create']) {
      expect(
        total(samples, 'db_client_operation_duration_seconds_count', { system: 'sqlite', operation }),
        operation,
      ).toBeGreaterThan(0);
    }
    const operations = new Set(
      find(samples, 'db_client_operation_duration_seconds_count').map((s) => s.labels.operation),
    );
    for (const operation of operations) {
      expect([
        'select',
        'insert',
        'update',
        'delete',
        'with',
        'create',
        'alter',
        'drop',
        'pragma',
        'other',
      ]).toContain(operation);
    }

    expect(find(samples, 'bastion_build_info')).toEqual([
      {
        name: 'bastion_build_info',
        labels: { version: BUILD_INFO.version, node_version: process.version },
        value: 1,
      },
    ]);
    // Pool gauges exist only on PostgreSQL.
    expect(text).not.toContain('db_client_connections');
  });

  it('labels requests by method, route template and status code', async () => {
    const { app } = await start();
    for (const id of ['42', '43', 'abc', 'x%2Fy']) await app.inject({ url: `/items/${id}?q=1` });
    await app.inject({ url: '/items/missing' });
    await app.inject({ method: 'HEAD', url: '/items/7' });
    await app.inject({ method: 'POST', url: '/multi' });
    await app.inject({ method: 'POST', url: '/multi' });
    await app.inject({ method: 'GET', url: '/multi' });
    await app.inject({ url: '/boom' });
    const { samples } = await scrape(app);
    const count = (labels: Record<string, string>) =>
      total(samples, 'http_server_request_duration_seconds_count', labels);

    expect(count({ method: 'GET', route: '/items/:id', status_code: '200' })).toBe(4);
    expect(count({ method: 'GET', route: '/items/:id', status_code: '404' })).toBe(1);
    expect(count({ method: 'HEAD', route: '/items/:id', status_code: '200' })).toBe(1);
    expect(count({ method: 'POST', route: '/multi', status_code: '200' })).toBe(2);
    expect(count({ method: 'GET', route: '/multi', status_code: '200' })).toBe(1);
    expect(count({ method: 'GET', route: '/boom', status_code: '500' })).toBe(1);

    // The histogram's +Inf bucket equals its count, and every series carries exactly these labels.
    const inf = find(samples, 'http_server_request_duration_seconds_bucket', {
      route: '/items/:id',
      status_code: '200',
      method: 'GET',
      le: '+Inf',
    });
    expect(inf.map((s) => s.value)).toEqual([4]);
    for (const s of find(samples, 'http_server_request_duration_seconds_count')) {
      expect(Object.keys(s.labels).sort()).toEqual(['method', 'route', 'status_code']);
    }
    const routeLabels = new Set(
      find(samples, 'http_server_request_duration_seconds_count').map((s) => s.labels.route),
    );
    for (const label of routeLabels) expect(label).not.toMatch(/42|43|abc|\?/);
  });

  it('gives 50 distinct unknown paths one shared route label (bounded cardinality)', async () => {
    const { app } = await start();
    await app.inject({ url: '/items/1' });
    await scrape(app); // so that the scrape's own series exists in the baseline
    const before = find((await scrape(app)).samples, 'http_server_request_duration_seconds_count');

    const tokens: string[] = [];
    for (let i = 0; i < 50; i++) {
      const token = randomBytes(6).toString('hex');
      tokens.push(token);
      const method = (['GET', 'POST', 'DELETE'] as const)[i % 3]!;
      await app.inject({ method, url: `/${token}/${i}/x${token}?${token}=1` });
    }
    const { text, samples } = await scrape(app);
    const after = find(samples, 'http_server_request_duration_seconds_count');

    const known = new Set(before.map((s) => s.labels.route));
    const added = new Set(after.map((s) => s.labels.route).filter((route) => !known.has(route)));
    expect(added).toEqual(new Set(['unmatched']));
    const unmatched = find(samples, 'http_server_request_duration_seconds_count', { route: 'unmatched' });
    expect(unmatched.map((s) => `${s.labels.method} ${s.labels.status_code}`).sort()).toEqual([
      'DELETE 404',
      'GET 404',
      'POST 404',
    ]);
    expect(unmatched.reduce((sum, s) => sum + s.value, 0)).toBe(50);
    // 50 paths added at most three series (one per method), and none of their text.
    expect(after.length - before.length).toBeLessThanOrEqual(4);
    for (const token of tokens) expect(text).not.toContain(token);
  });

  it('folds non-standard methods into _OTHER', async () => {
    const { app } = await start();
    for (const method of ['PURGE', 'PROPFIND', 'MKCOL', 'SEARCH', 'LOCK'] as const) {
      const res = await app.inject({ method, url: `/x-${method.toLowerCase()}` });
      expect(res.statusCode).toBe(404);
    }
    const { samples } = await scrape(app);
    const methods = new Set(
      find(samples, 'http_server_request_duration_seconds_count').map((s) => s.labels.method),
    );
    expect(
      total(samples, 'http_server_request_duration_seconds_count', { method: '_OTHER', route: 'unmatched' }),
    ).toBe(5);
    for (const method of methods) {
      expect([
        'GET',
        'HEAD',
        'POST',
        'PUT',
        'DELETE',
        'CONNECT',
        'OPTIONS',
        'TRACE',
        'PATCH',
        '_OTHER',
      ]).toContain(method);
    }
  });

  it('never turns an invented method such as FOO into a label (sent raw over TCP)', async () => {
    // light-my-request refuses methods outside http.METHODS, so FOO goes over a real socket.
    const { app } = await start();
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as net.AddressInfo;
    const response = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.write('FOO /items/1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
      });
      let data = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk) => {
        data += chunk;
      });
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
    });
    expect(response).toMatch(/^HTTP\/1\.1 (400|404|405|501)/);
    const { text, samples } = await scrape(app);
    expect(text).not.toContain('FOO');
    for (const s of find(samples, 'http_server_request_duration_seconds_count')) {
      expect(s.labels.method).not.toBe('FOO');
    }
  });

  withPromtool('passes promtool check metrics after traffic (SQLite)', async () => {
    const { app } = await start({ env: { BASTION_SLOW_QUERY_MS: '0' } });
    await traffic(app);
    await sql`select * from no_such_table`.execute(app.bastion.database.db).catch(() => {});
    const { text } = await scrape(app);
    expect(text).toContain('db_client_slow_queries_total{');
    const { status, output } = promtoolCheck(text);
    expect(output).toBe('');
    expect(status).toBe(0);
  });

  withPromtool('the promtool check does report a bad exposition (it can fail)', () => {
    const { status, output } = promtoolCheck(
      '# HELP foo_total A gauge misnamed as a counter.\n# TYPE foo_total gauge\nfoo_total 1\n',
    );
    expect(status !== 0 || output !== '').toBe(true);
  });
});

describe.skipIf(!pgUp)('GET /metrics on PostgreSQL', () => {
  it('adds pool gauges and labels operations with system="postgres"', async () => {
    const { app, config } = await start({ database: 'postgres' });
    await traffic(app);
    await app.bastion.database.ping();
    const { samples } = await scrape(app);

    expect(find(samples, 'db_client_connections', { state: 'idle' })).toHaveLength(1);
    expect(find(samples, 'db_client_connections', { state: 'used' })).toHaveLength(1);
    const idle = total(samples, 'db_client_connections', { state: 'idle' });
    const used = total(samples, 'db_client_connections', { state: 'used' });
    expect(idle + used).toBeGreaterThanOrEqual(1);
    expect(idle + used).toBeLessThanOrEqual(config.database.poolMax);
    expect(total(samples, 'db_client_connections_max')).toBe(config.database.poolMax);
    expect(find(samples, 'db_client_connections_pending_requests').map((s) => s.value)).toEqual([0]);
    expect(
      total(samples, 'db_client_operation_duration_seconds_count', {
        system: 'postgres',
        operation: 'select',
      }),
    ).toBeGreaterThan(0);
    expect(find(samples, 'db_client_operation_duration_seconds_count', { system: 'sqlite' })).toEqual([]);
  });

  withPromtool('passes promtool check metrics after traffic (PostgreSQL)', async () => {
    const { app } = await start({ database: 'postgres', env: { BASTION_SLOW_QUERY_MS: '0' } });
    await traffic(app);
    await sql`select * from no_such_table`.execute(app.bastion.database.db).catch(() => {});
    const { text } = await scrape(app);
    expect(text).toContain('db_client_connections_max');
    const { status, output } = promtoolCheck(text);
    expect(output).toBe('');
    expect(status).toBe(0);
  });
});

describe('BASTION_METRICS_TOKEN', () => {
  it('leaves /metrics open in development when no token is set', async () => {
    const { app, config } = await start({ env: { NODE_ENV: 'development', BASTION_LOG_FORMAT: 'json' } });
    expect(config.metrics.token).toBeNull();
    const res = await app.inject({ url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('http_server_request_duration_seconds');
  });

  it('requires exactly `Authorization: Bearer <token>` when a token is set', async () => {
    const token = randomBytes(24).toString('base64url');
    const { app, logs } = await start({ env: { BASTION_METRICS_TOKEN: token } });

    const refused: Array<[string, Record<string, string>, string?]> = [
      ['no header', {}],
      ['wrong token of the same length', { authorization: `Bearer ${'A'.repeat(token.length)}` }],
      ['a prefix of the token', { authorization: `Bearer ${token.slice(0, -1)}` }],
      ['the token with extra characters', { authorization: `Bearer ${token}x` }],
      ['a much longer token', { authorization: `Bearer ${token.repeat(4)}` }],
      ['an empty bearer', { authorization: 'Bearer ' }],
      [
        'the Basic scheme with the token as password',
        { authorization: `Basic ${Buffer.from(`metrics:${token}`).toString('base64')}` },
      ],
      ['the Basic scheme with the raw token', { authorization: `Basic ${token}` }],
      ['the raw token without a scheme', { authorization: token }],
      ['the token in another header', { 'x-metrics-token': token, 'x-api-key': token }],
      ['the token in the query string', {}, `/metrics?token=${token}&access_token=${token}`],
    ];
    for (const [why, headers, url] of refused) {
      const res = await app.inject({ method: 'GET', url: url ?? '/metrics', headers });
      expect(res.statusCode, why).toBe(401);
      expect(res.headers['www-authenticate'], why).toMatch(/^Bearer\b/);
      expect(res.json().error, why).toBe('unauthorized');
      expect(res.body, why).not.toContain('http_server_request_duration_seconds');
      expect(res.body, why).not.toContain(token);
    }

    const ok = await app.inject({ url: '/metrics', headers: { authorization: `Bearer ${token}` } });
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toContain('http_server_request_duration_seconds');
    // Refused scrapes are still counted, under the route's own label.
    expect(
      total(parseExposition(ok.body), 'http_server_request_duration_seconds_count', {
        route: '/metrics',
        status_code: '401',
      }),
    ).toBe(refused.length);

    // The token never reaches the logs, whichever way it was sent.
    expect(logs.lines.filter((l) => l.msg === 'request completed')).toHaveLength(refused.length + 1);
    expect(logs.text).not.toContain(token);
  });
});

describe('BASTION_METRICS_LISTEN', () => {
  it('moves /metrics off the main app onto the separate metrics app', async () => {
    const { app } = await start({ env: { BASTION_METRICS_LISTEN: '127.0.0.1:0' } });
    await app.inject({ url: '/items/5' });
    const main = await app.inject({ url: '/metrics' });
    expect(main.statusCode).toBe(404);
    expect(main.body).not.toContain('http_server_request_duration_seconds');

    const metricsApp = await createMetricsApp(app.bastion);
    try {
      const res = await metricsApp.inject({ url: '/metrics', headers: { 'x-request-id': 'scrape-1' } });
      expect(res.statusCode).toBe(200);
      expect(res.headers['x-request-id']).toBe('scrape-1');
      const missing = await metricsApp.inject({ url: '/nope', headers: { 'x-request-id': 'bad id!' } });
      expect(missing.statusCode).toBe(404);
      expect(missing.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      expect(missing.json().request_id).toBe(missing.headers['x-request-id']);
      const samples = parseExposition(res.body);
      // It serves the main app's registry.
      expect(total(samples, 'http_server_request_duration_seconds_count', { route: '/items/:id' })).toBe(1);
      expect(total(samples, 'http_server_request_duration_seconds_count', { route: 'unmatched' })).toBe(1);
      expect((await metricsApp.inject({ url: '/items/5' })).statusCode).toBe(404);
    } finally {
      await metricsApp.close();
    }
  });

  it('still requires the token on the metrics app when both are set', async () => {
    const token = randomBytes(24).toString('hex');
    const { app } = await start({
      env: { BASTION_METRICS_LISTEN: '127.0.0.1:0', BASTION_METRICS_TOKEN: token },
    });
    const metricsApp = await createMetricsApp(app.bastion);
    try {
      expect((await metricsApp.inject({ url: '/metrics' })).statusCode).toBe(401);
      const res = await metricsApp.inject({ url: '/metrics', headers: { authorization: `Bearer ${token}` } });
      expect(res.statusCode).toBe(200);
    } finally {
      await metricsApp.close();
    }
  });
});

describe.each([
  { engine: 'SQLite', database: 'sqlite' as const, skip: false },
  { engine: 'PostgreSQL', database: 'postgres' as const, skip: !pgUp },
])('slow queries on $engine', ({ database, skip }) => {
  it.skipIf(skip)(
    'counts and logs every query as slow at BASTION_SLOW_QUERY_MS=0, without parameter values',
    async () => {
      const { app, logs } = await start({ database, env: { BASTION_SLOW_QUERY_MS: '0' } });
      const db = app.bastion.database.db;
      const system = database;
      const before = (await scrape(app)).samples;
      const slowBefore = total(before, 'db_client_slow_queries_total', { system, operation: 'select' });
      expect(slowBefore).toBeGreaterThan(0);

      const secret = `planted_${randomBytes(12).toString('hex')}`;
      const linesBefore = logs.lines.filter((l) => l.msg === 'slow database query').length;
      await sql`select ${secret} as probe`.execute(db);
      await db
        .insertInto('instance_settings')
        .values({ key: `k_${secret}`, value: secret, updated_at: new Date().toISOString() })
        .execute();
      await db.selectFrom('instance_settings').select('value').where('value', '=', secret).execute();

      const after = await scrape(app);
      // At least our two selects (background work such as a keyring reload may add its own).
      expect(
        total(after.samples, 'db_client_slow_queries_total', { system, operation: 'select' }),
      ).toBeGreaterThanOrEqual(slowBefore + 2);
      expect(
        total(after.samples, 'db_client_slow_queries_total', { system, operation: 'insert' }),
      ).toBeGreaterThan(total(before, 'db_client_slow_queries_total', { system, operation: 'insert' }));

      const slow = logs.lines.filter((l) => l.msg === 'slow database query');
      expect(slow.length - linesBefore).toBeGreaterThanOrEqual(3);
      expect(
        slow.filter((l) => /"instance_settings"/.test(String(l.sql)) && /"value" = /.test(String(l.sql))),
      ).toHaveLength(1);
      for (const line of slow) {
        expect(line.level).toBe(40);
        expect(line.event).toBe('slow_query');
        expect(typeof line.operation).toBe('string');
        expect(typeof line.duration_ms).toBe('number');
        expect(line.duration_ms as number).toBeGreaterThanOrEqual(0);
        expect(typeof line.sql).toBe('string');
      }
      const probe = slow.find((l) => /as "?probe"?/.test(String(l.sql)));
      expect(probe).toMatchObject({ operation: 'select' });
      expect(
        slow.some((l) => l.operation === 'insert' && /insert into "instance_settings"/.test(String(l.sql))),
      ).toBe(true);

      expect(logs.text).not.toContain(secret);
      expect(after.text).not.toContain(secret);
    },
  );

  it.skipIf(skip)('counts and logs nothing below the threshold', async () => {
    const { app, logs } = await start({ database, env: { BASTION_SLOW_QUERY_MS: '3600000' } });
    await sql`select 1`.execute(app.bastion.database.db);
    await traffic(app);
    const { samples } = await scrape(app);
    expect(find(samples, 'db_client_slow_queries_total')).toEqual([]);
    expect(
      total(samples, 'db_client_operation_duration_seconds_count', { system: database }),
    ).toBeGreaterThan(0);
    expect(logs.lines.filter((l) => l.msg === 'slow database query')).toEqual([]);
  });
});
