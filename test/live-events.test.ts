import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { decodeJwt, decodeProtectedHeader, generateKeyPair, SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { loadConfig } from '../src/config/load-config.ts';
import type { BastionConfig } from '../src/config/schema.ts';
import { createApp } from '../src/server/create-app.ts';
import { createPostgresSchema, LogCapture, type TestApp } from './support/app.ts';
import { ADMIN, call, createUser, login, STRONG_PASSWORD, startIdentityApp } from './support/identity.ts';
import {
  DATABASE_URL_TEST,
  postgresAvailable,
  REDIS_URL_TEST,
  redisAvailable,
  uniqueName,
} from './support/services.ts';

const pgUp = await postgresAvailable();
const redisUp = await redisAvailable();

type Message = Record<string, unknown>;

/** Every client a test opened, closed after it whatever its outcome (so limits do not leak across tests). */
const opened = new Set<{ close(): Promise<void> | void }>();
afterEach(async () => {
  await Promise.all([...opened].map((client) => client.close()));
  opened.clear();
});

/** A `ws` client that records what it receives, how it closed, or the HTTP status it was refused with. */
class Client {
  readonly ws: WebSocket;
  readonly messages: Message[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  /** Resolves on open, or with the HTTP status when the upgrade is refused. */
  readonly outcome: Promise<'open' | number>;
  #waiters: Array<() => void> = [];

  constructor(url: string, protocols: string[] = [], options: WebSocket.ClientOptions = {}) {
    this.ws = new WebSocket(url, protocols, options);
    opened.add(this);
    this.ws.on('error', () => {});
    this.ws.on('message', (data) => {
      this.messages.push(JSON.parse(String(data)) as Message);
      for (const wake of this.#waiters) wake();
    });
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    this.outcome = new Promise((resolve) => {
      this.ws.on('open', () => resolve('open'));
      this.ws.on('unexpected-response', (request, response) => {
        resolve(response.statusCode ?? 0);
        request.destroy();
      });
    });
  }

  /** The first message (received or to come) of this type, within `ms`. */
  async next(type: string, ms = 2000): Promise<Message> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.messages.find((message) => message.type === type);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${type} message within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  send(value: unknown): void {
    this.ws.send(typeof value === 'string' ? value : JSON.stringify(value));
  }

  /** Sends a ping message and waits for its pong: everything the server sent before has arrived. */
  async roundTrip(): Promise<void> {
    const others = this.messages.filter((message) => message.type !== 'pong');
    this.messages.splice(0, this.messages.length, ...others);
    this.send({ type: 'ping' });
    await this.next('pong');
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    if (this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
    else this.ws.close();
    await within(3000, this.closed);
  }

  /** The types of the messages received, pongs left out. */
  get types(): unknown[] {
    return this.messages.map((message) => message.type).filter((type) => type !== 'pong');
  }
}

/** Resolves `promise`, or fails after `ms`. */
function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`not within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Polls `check` every 10 ms until it holds, at most `ms`. */
async function until(ms: number, check: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The value of a metric (summed over the samples matching `labels`); `sample` picks e.g. `_count`. */
async function metric(
  app: FastifyInstance,
  name: string,
  labels: Record<string, string> = {},
  sample = name,
) {
  const found = app.bastion.registry.getSingleMetric(name);
  if (!found) throw new Error(`metric ${name} is not registered`);
  const { values } = await found.get();
  return values
    .filter((value) => ((value as { metricName?: string }).metricName ?? name) === sample)
    .filter((value) => Object.entries(labels).every(([key, wanted]) => value.labels[key] === wanted))
    .reduce((sum, value) => sum + value.value, 0);
}

const disconnects = (app: FastifyInstance, reason: string) =>
  metric(app, 'bastion_ws_disconnects_total', { reason });

/** Waits (briefly) for the server to have counted a disconnect: it sees the close after the client. */
async function expectDisconnects(app: FastifyInstance, reason: string, expected: number): Promise<void> {
  await until(1000, async () => (await disconnects(app, reason)) >= expected);
  expect(await disconnects(app, reason)).toBe(expected);
}

function urlOf(app: FastifyInstance, query = ''): string {
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('not listening');
  return `ws://127.0.0.1:${address.port}/ws${query}`;
}

function portOf(app: FastifyInstance): number {
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('not listening');
  return address.port;
}

/** Connects with the token in the subprotocol and waits for the welcome. */
async function connected(app: FastifyInstance, token: string, options: WebSocket.ClientOptions = {}) {
  const client = new Client(urlOf(app), ['bastion.v1', `bearer.${token}`], options);
  expect(await client.outcome).toBe('open');
  await client.next('welcome');
  return client;
}

/** A raw TCP WebSocket handshake (token in the subprotocol), read up to the welcome. */
async function rawConnect(port: number, token: string): Promise<{ socket: net.Socket; head: string }> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  opened.add({ close: () => void socket.destroy() });
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(
    'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
      `Sec-WebSocket-Protocol: bastion.v1, bearer.${token}\r\n\r\n`,
  );
  let head = '';
  await within(
    2000,
    new Promise<void>((resolve) => {
      const onData = (chunk: Buffer) => {
        head += chunk.toString('latin1');
        if (head.includes('"welcome"')) {
          socket.off('data', onData);
          resolve();
        }
      };
      socket.on('data', onData);
    }),
  );
  return { socket, head };
}

const WEBSOCKET = {
  maxConnectionsPerUser: 2,
  maxMessagesPerSecond: 5,
  heartbeatMs: 250,
  authTimeoutMs: 300,
  maxBufferedBytes: 256 * 1024,
};

function smallLimits(config: BastionConfig): void {
  config.loadShedding.enabled = false;
  config.websocket = { ...WEBSOCKET };
}

describe('GET /ws on one instance', () => {
  let t: TestApp;
  let admin: string;
  let viewer: string;

  beforeAll(async () => {
    t = await startIdentityApp({ configure: smallLimits });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    admin = (await login(t.app, ADMIN.email, ADMIN.password)).access_token;
    await createUser(t.app, admin, 'viewer@live.test');
    viewer = (await login(t.app, 'viewer@live.test', STRONG_PASSWORD)).access_token;
  });
  afterAll(async () => {
    await t?.close();
  });

  it('authenticates with the subprotocol and echoes only bastion.v1, never the token', async () => {
    const client = await connected(t.app, admin);
    expect(client.ws.protocol).toBe('bastion.v1');
    const welcome = await client.next('welcome');
    expect(welcome.user_id).toBe(decodeJwt(admin).sub);
    expect(welcome.permissions).toEqual(['alerts:read', 'monitoring:read', 'security:read']);
    await client.close();

    const { socket, head } = await rawConnect(portOf(t.app), admin);
    socket.destroy();
    expect(head).toMatch(/^HTTP\/1\.1 101/);
    expect(head).toMatch(/\r\nSec-WebSocket-Protocol: bastion\.v1\r\n/i);
    expect(head).not.toContain(admin);
    expect(head).not.toContain(admin.slice(-20));
  });

  it('refuses a missing, wrong, forged or unsigned token with 4401', async () => {
    const before = await disconnects(t.app, 'auth_failed');
    const header = decodeProtectedHeader(admin);
    const claims = decodeJwt(admin);
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const forged = await new SignJWT({ ...claims })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: String(header.kid) })
      .sign(privateKey);
    const [head, body] = admin.split('.');
    const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url')}.${body}.`;
    const tampered = `${head}.${Buffer.from(JSON.stringify({ ...claims, sub: 'someone-else' })).toString('base64url')}.${admin.split('.')[2]}`;
    for (const token of ['not-a-token', forged, unsigned, tampered, `${admin}x`]) {
      const client = new Client(urlOf(t.app), ['bastion.v1', `bearer.${token}`]);
      expect(await within(2000, client.closed)).toEqual({ code: 4401, reason: 'authentication failed' });
      expect(client.messages).toEqual([]);
    }
    const empty = new Client(urlOf(t.app));
    await empty.outcome;
    empty.send({ type: 'auth', token: '' });
    expect((await within(2000, empty.closed)).code).toBe(4401);
    await expectDisconnects(t.app, 'auth_failed', before + 6);
  });

  it('refuses an API key, even a valid one: the stream is for signed-in users', async () => {
    const org = (await call(t.app, admin, 'POST', '/api/v1/organizations', { name: 'Live' })).json().id;
    const created = await call(t.app, admin, 'POST', `/api/v1/organizations/${org}/api-keys`, {
      name: 'live',
      permissions: ['workflows:read'],
    });
    expect(created.statusCode, created.body).toBe(201);
    const key = created.json().token as string;
    const client = new Client(urlOf(t.app), ['bastion.v1', `bearer.${key}`]);
    expect((await within(2000, client.closed)).code).toBe(4401);
    const byMessage = new Client(urlOf(t.app));
    await byMessage.outcome;
    byMessage.send({ type: 'auth', token: key });
    expect((await within(2000, byMessage.closed)).code).toBe(4401);
  });

  it('refuses a token in the URL with 400 before upgrading, and never logs it', async () => {
    for (const query of [`?token=${admin}`, `?access_token=${admin}`, `?x=1&Access-Token=${admin}`]) {
      const client = new Client(urlOf(t.app, query));
      expect(await within(2000, client.outcome)).toBe(400);
    }
    const response = await t.app.inject({ method: 'GET', url: `/ws?access_token=${admin}` });
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toBe('token_in_url');
    expect(t.logs.text).not.toContain(admin);
    expect(t.logs.text).not.toContain(admin.split('.')[2]);
  });

  it('needs bastion.v1 next to a bearer subprotocol (closes 4400 without it)', async () => {
    const socket = net.connect(portOf(t.app), '127.0.0.1');
    opened.add({ close: () => void socket.destroy() });
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.write(
      'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
        `Sec-WebSocket-Protocol: bearer.${admin}\r\n\r\n`,
    );
    // The client never answers the close frame: the server would wait a moment, the test need not.
    const closeFrame = () => {
      const all = Buffer.concat(chunks);
      return all.indexOf(0x88, all.indexOf('\r\n\r\n')) !== -1;
    };
    await until(2000, closeFrame);
    const received = Buffer.concat(chunks);
    const text = received.toString('latin1');
    expect(text).toMatch(/^HTTP\/1\.1 101/);
    expect(text).not.toMatch(/Sec-WebSocket-Protocol/i);
    expect(text).not.toContain('welcome');
    // The close frame: opcode 0x88, then the code 4400 (0x1130) after the length byte.
    const frame = received.indexOf(0x88, text.indexOf('\r\n\r\n'));
    expect(received.readUInt16BE(frame + 2)).toBe(4400);
  });

  it('serves an upgrade request for another path as plain HTTP and closes the connection', async () => {
    for (const upgrade of [
      'Upgrade: websocket\r\nConnection: Upgrade',
      'Upgrade: h2c\r\nConnection: Upgrade',
    ]) {
      const socket = net.connect(portOf(t.app), '127.0.0.1');
      opened.add({ close: () => void socket.destroy() });
      let text = '';
      socket.on('data', (chunk: Buffer) => {
        text += chunk.toString('latin1');
      });
      socket.write(`GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n${upgrade}\r\n\r\n`);
      await within(2000, new Promise((resolve) => socket.once('close', resolve)));
      expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(text).toMatch(/\r\nConnection: close\r\n/i);
      expect(text).toMatch(/\r\nx-request-id: /i);
    }
  });

  it('answers a plain GET /ws with 426', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/ws' });
    expect(response.statusCode).toBe(426);
    expect(response.json().error).toBe('upgrade_required');
  });

  it('authenticates with a first message, and closes 4408 when none comes in time', async () => {
    const client = new Client(urlOf(t.app));
    expect(await client.outcome).toBe('open');
    expect(client.ws.protocol).toBe('');
    client.send({ type: 'auth', token: viewer });
    const welcome = await client.next('welcome');
    expect(welcome.permissions).toEqual([]);
    await client.close();

    const before = await disconnects(t.app, 'auth_timeout');
    const started = Date.now();
    const silent = new Client(urlOf(t.app));
    expect(await silent.outcome).toBe('open');
    silent.send({ type: 'ping' });
    expect(await within(2000, silent.closed)).toEqual({ code: 4408, reason: 'authentication timeout' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(WEBSOCKET.authTimeoutMs - 50);
    await expectDisconnects(t.app, 'auth_timeout', before + 1);
  });

  it('closes 1007 on invalid JSON and ignores unknown messages', async () => {
    const client = await connected(t.app, viewer);
    client.send({ type: 'subscribe', topics: ['everything'] });
    await client.roundTrip();
    client.send('{not json');
    expect((await within(2000, client.closed)).code).toBe(1007);
  });

  it('sends security events and bans only to users with security:read', async () => {
    const adminClient = await connected(t.app, admin);
    const viewerClient = await connected(t.app, viewer);
    await t.app.bastion.liveEvents.publish({
      type: 'security_event',
      data: { kind: 'probe', marker: 'hub' },
      at: new Date().toISOString(),
    });
    const event = await adminClient.next('security_event');
    expect(event.data).toEqual({ kind: 'probe', marker: 'hub' });
    expect(typeof event.at).toBe('string');
    // The hub delivers to every connection in one pass, so by the viewer's pong it would have arrived.
    await viewerClient.roundTrip();
    expect(viewerClient.types).toEqual(['welcome']);

    // A real block: the rule is announced as a ban, the refused request as a security event.
    adminClient.messages.length = 0;
    const blocked = await call(t.app, admin, 'POST', '/api/v1/monitoring/security/block-ip', {
      ip: '198.51.100.23',
      reason: 'live test',
    });
    expect(blocked.statusCode, blocked.body).toBeLessThan(300);
    const ban = await adminClient.next('ban');
    expect(ban.data).toMatchObject({ cidr: '198.51.100.23', reason: 'live test', source: 'api' });
    const refused = await t.app.inject({ method: 'GET', url: '/auth/me', remoteAddress: '198.51.100.23' });
    expect(refused.statusCode).toBe(403);
    const stored = await adminClient.next('security_event', 3000);
    expect(stored.data).toMatchObject({ kind: 'ip_blocked', client_ip: '198.51.100.23', blocked: true });
    await viewerClient.roundTrip();
    expect(viewerClient.types).toEqual(['welcome']);
    await Promise.all([adminClient.close(), viewerClient.close()]);
  });

  it('allows maxConnectionsPerUser connections per user and closes the next one with 4429', async () => {
    const before = await disconnects(t.app, 'too_many_connections');
    const first = await connected(t.app, viewer);
    const second = await connected(t.app, viewer);
    const third = new Client(urlOf(t.app), ['bastion.v1', `bearer.${viewer}`]);
    expect(await within(2000, third.closed)).toEqual({ code: 4429, reason: 'too many connections' });
    expect(third.messages).toEqual([]);
    // Another user is not affected, and a slot freed is a slot usable again.
    const other = await connected(t.app, admin);
    await first.close();
    await until(1000, () => t.app.bastion.liveEvents.size === 2);
    const again = await connected(t.app, viewer);
    await expectDisconnects(t.app, 'too_many_connections', before + 1);
    await Promise.all([second.close(), other.close(), again.close()]);
  });

  it('closes a client that floods messages with 1008', async () => {
    const before = await disconnects(t.app, 'rate_limited');
    const client = await connected(t.app, viewer);
    for (let i = 0; i < WEBSOCKET.maxMessagesPerSecond * 4; i++) client.send({ type: 'noise', i });
    expect(await within(2000, client.closed)).toEqual({ code: 1008, reason: 'message rate exceeded' });
    await expectDisconnects(t.app, 'rate_limited', before + 1);
  });

  it('keeps a client that answers pings, and drops one that does not', async () => {
    const before = await disconnects(t.app, 'heartbeat');
    const polite = await connected(t.app, viewer);
    const silent = await connected(t.app, admin, { autoPong: false });
    const started = Date.now();
    const closed = await within(WEBSOCKET.heartbeatMs * 6, silent.closed);
    expect(closed.code).toBe(1006);
    expect(Date.now() - started).toBeGreaterThanOrEqual(WEBSOCKET.heartbeatMs - 50);
    expect(polite.ws.readyState).toBe(WebSocket.OPEN);
    await polite.roundTrip();
    await expectDisconnects(t.app, 'heartbeat', before + 1);
    await polite.close();
  });

  it('drops a client that stops reading instead of buffering for it without bound', async () => {
    const hub = t.app.bastion.liveEvents;
    const before = await disconnects(t.app, 'backpressure');
    // A client that reads, receiving the same events, is the control: size alone drops no one.
    const reader = await connected(t.app, admin);
    const { socket } = await rawConnect(portOf(t.app), admin);
    socket.pause();
    const chunk = 'x'.repeat(64 * 1024);
    let published = 0;
    // 64 MiB at most: far beyond the kernel's socket buffers plus maxBufferedBytes.
    while (published < 1024 && (await disconnects(t.app, 'backpressure')) === before) {
      await hub.publish({ type: 'health', data: { chunk, n: published }, at: new Date().toISOString() });
      published++;
      if (published % 16 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await until(2000, async () => (await disconnects(t.app, 'backpressure')) === before + 1);
    expect(published).toBeLessThan(1024);
    await until(1000, () => hub.size === 1);
    await until(
      5000,
      () => reader.messages.filter((message) => message.type === 'health').length === published,
    );
    expect(reader.ws.readyState).toBe(WebSocket.OPEN);
    socket.destroy();
  });

  it('closes the connection when its session is revoked (logout)', async () => {
    const tokens = await login(t.app, 'viewer@live.test', STRONG_PASSWORD);
    const client = await connected(t.app, tokens.access_token);
    expect((await call(t.app, tokens.access_token, 'POST', '/auth/logout')).statusCode).toBe(204);
    expect(await within(2000, client.closed)).toEqual({ code: 4401, reason: 'session revoked' });
  });

  it('counts connects, disconnects by reason, active connections and durations', async () => {
    const app = t.app;
    await until(1000, () => app.bastion.liveEvents.size === 0);
    const connects = await metric(app, 'bastion_ws_connects_total');
    const clientCloses = await disconnects(app, 'client');
    const durations = await metric(
      app,
      'bastion_ws_connection_duration_seconds',
      {},
      'bastion_ws_connection_duration_seconds_count',
    );
    expect(await metric(app, 'bastion_ws_active_connections')).toBe(0);
    const inFlight = await metric(app, 'http_server_active_requests');

    const one = await connected(app, viewer);
    const two = await connected(app, admin);
    expect(await metric(app, 'bastion_ws_active_connections')).toBe(2);
    expect(await metric(app, 'bastion_ws_connects_total')).toBe(connects + 2);
    await one.close();
    await two.close();
    await until(1000, async () => (await metric(app, 'bastion_ws_active_connections')) === 0);
    // The upgrade requests ended with their 101: not left "in flight" for the HTTP metrics.
    expect(await metric(app, 'http_server_active_requests')).toBe(inFlight);
    await expectDisconnects(app, 'client', clientCloses + 2);
    expect(
      await metric(
        app,
        'bastion_ws_connection_duration_seconds',
        {},
        'bastion_ws_connection_duration_seconds_count',
      ),
    ).toBe(durations + 2);

    const scraped = await app.inject({
      method: 'GET',
      url: '/metrics',
      headers: { authorization: `Bearer ${admin}` },
    });
    expect(scraped.body).toContain('bastion_ws_disconnects_total{reason="backpressure"} 1');
    expect(scraped.body).toContain('# TYPE bastion_ws_connection_duration_seconds histogram');
  });

  it('never writes an access token to the logs', () => {
    expect(t.logs.text.length).toBeGreaterThan(0);
    for (const token of [admin, viewer]) expect(t.logs.text).not.toContain(token.split('.')[2]);
  });
});

describe('GET /ws token expiry and shutdown', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startIdentityApp({
      configure: (config) => {
        smallLimits(config);
        config.websocket.heartbeatMs = 60_000;
        config.identity.accessTokenTtlSeconds = 2;
      },
    });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('closes 4401 when the token expires, unless a fresh one was sent; an expired token is refused', async () => {
    const first = (await login(t.app, ADMIN.email, ADMIN.password)).access_token;
    const expiresAt = (decodeJwt(first).exp ?? 0) * 1000;
    const kept = await connected(t.app, first);
    const lapsed = await connected(t.app, first);
    // A token issued in the second before `first` expires lives at least a second longer.
    await until(3000, () => Date.now() >= expiresAt - 1000 + 20);
    const fresh = (await login(t.app, ADMIN.email, ADMIN.password)).access_token;
    expect((decodeJwt(fresh).exp ?? 0) * 1000).toBeGreaterThan(expiresAt);
    kept.messages.length = 0;
    kept.send({ type: 'auth', token: fresh });
    await kept.next('welcome');

    expect(await within(3000, lapsed.closed)).toEqual({ code: 4401, reason: 'token expired' });
    expect(Date.now()).toBeGreaterThanOrEqual(expiresAt);
    expect(kept.ws.readyState).toBe(WebSocket.OPEN);
    expect(await within(3000, kept.closed)).toEqual({ code: 4401, reason: 'token expired' });
    await expectDisconnects(t.app, 'token_expired', 2);

    const late = new Client(urlOf(t.app), ['bastion.v1', `bearer.${first}`]);
    expect((await within(2000, late.closed)).code).toBe(4401);
    expect(late.messages).toEqual([]);
  });

  it('closes connections with 1001 shutdown when the app closes', async () => {
    const token = (await login(t.app, ADMIN.email, ADMIN.password)).access_token;
    const client = await connected(t.app, token);
    const started = Date.now();
    const closing = t.app.close();
    expect(await within(3000, client.closed)).toEqual({ code: 1001, reason: 'shutdown' });
    await within(3000, closing);
    expect(Date.now() - started).toBeLessThan(3000);
    await expectDisconnects(t.app, 'shutdown', 1);
  });
});

describe.skipIf(!pgUp || !redisUp)('GET /ws across two instances (PostgreSQL + Redis)', () => {
  const keyPrefix = `${uniqueName('bastion_test')}:`;
  const instances: Array<{ app: FastifyInstance; dataDir: string }> = [];

  async function start(schema: string, masterKey: string): Promise<FastifyInstance> {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'bastion-test-'));
    const config = await loadConfig({
      file: null,
      env: {
        NODE_ENV: 'test',
        BASTION_DATA_DIR: dataDir,
        BASTION_LOG_FORMAT: 'json',
        DATABASE_URL: DATABASE_URL_TEST,
        REDIS_URL: REDIS_URL_TEST,
        BASTION_MASTER_KEY: masterKey,
        BASTION_ADMIN_EMAIL: ADMIN.email,
        BASTION_ADMIN_PASSWORD: ADMIN.password,
      },
    });
    config.redis.keyPrefix = keyPrefix;
    smallLimits(config);
    config.websocket.heartbeatMs = 60_000;
    const app = await createApp({ config, logDestination: new LogCapture(), databaseSchema: schema });
    instances.push({ app, dataDir });
    await app.listen({ port: 0, host: '127.0.0.1' });
    return app;
  }

  afterAll(async () => {
    for (const { app, dataDir } of instances) {
      await app.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('delivers an event published on instance A to a client on instance B, and revocations too', async () => {
    const { schema } = await createPostgresSchema();
    const masterKey = randomBytes(32).toString('base64');
    const a = await start(schema, masterKey);
    const b = await start(schema, masterKey);
    expect(a.bastion.state.kind).toBe('redis');
    const tokens = await login(a, ADMIN.email, ADMIN.password);
    const client = await connected(b, tokens.access_token);

    await a.bastion.liveEvents.publish({
      type: 'alert',
      data: { rule: 'Attack burst' },
      at: new Date().toISOString(),
    });
    expect((await client.next('alert')).data).toEqual({ rule: 'Attack burst' });
    const blocked = await call(a, tokens.access_token, 'POST', '/api/v1/monitoring/security/block-ip', {
      ip: '203.0.113.99',
      reason: 'cross-instance',
    });
    expect(blocked.statusCode, blocked.body).toBeLessThan(300);
    expect((await client.next('ban')).data).toMatchObject({ cidr: '203.0.113.99', source: 'api' });

    expect((await call(a, tokens.access_token, 'POST', '/auth/logout')).statusCode).toBe(204);
    expect(await within(2000, client.closed)).toEqual({ code: 4401, reason: 'session revoked' });
  });
});
