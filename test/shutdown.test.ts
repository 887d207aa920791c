import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { listen, type RunningServer } from '../src/server/serve.ts';
import { startTestApp, type TestApp } from './support/app.ts';
import { postgresAvailable } from './support/services.ts';

const pgUp = await postgresAvailable();
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

interface Server {
  t: TestApp;
  running: RunningServer;
  port: number;
  /** Resolves when the slow or hanging handler has started. */
  started: Promise<void>;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup().catch(() => {});
});

async function startServer(
  options: { database?: 'sqlite' | 'postgres'; env?: Record<string, string> } = {},
): Promise<Server> {
  let markStarted: () => void = () => {};
  const started = new Promise<void>((resolve) => {
    markStarted = resolve;
  });
  const t = await startTestApp({
    database: options.database,
    env: { PORT: '0', HOST: '127.0.0.1', ...options.env },
    routes: (app) => {
      // Waits, then uses the database: proves storage stays open until in-flight work is done.
      app.get('/slow', { config: { auth: 'public' } }, async () => {
        markStarted();
        await new Promise((resolve) => setTimeout(resolve, 300));
        await sql`select 1 as one`.execute(app.bastion.database.db);
        return { finished: true };
      });
      app.get('/hang', { config: { auth: 'public' } }, async () => {
        markStarted();
        await new Promise(() => {});
      });
    },
  });
  cleanups.push(() => t.close());
  const running = await listen(t.app);
  const port = Number(new URL(running.addresses[0]!).port);
  return { t, running, port, started };
}

/** One request on its own new connection. */
function get(
  port: number,
  path: string,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port, path, agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        body += chunk;
      });
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body }),
      );
      response.on('error', reject);
    });
    request.on('error', reject);
  });
}

/** Waits (bounded) until the listener has stopped accepting. */
async function untilNotListening(server: Server): Promise<void> {
  for (let attempt = 0; attempt < 200 && server.t.app.server.listening; attempt += 1) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  expect(server.t.app.server.listening).toBe(false);
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([promise, guard]).finally(() => clearTimeout(timer));
}

describe.each([
  ['SQLite', 'sqlite' as const, true],
  ['PostgreSQL', 'postgres' as const, pgUp],
])('graceful shutdown on %s', (_name, database, available) => {
  it.skipIf(!available)(
    'lets the in-flight request finish, refuses new ones, then closes storage',
    async () => {
      const server = await startServer({ database });
      const inFlight = get(server.port, '/slow');
      await server.started;

      const stopping = server.running.shutdown('test');
      await untilNotListening(server);

      // A new connection after shutdown started is refused (or, if it slipped in, answered 503).
      const late = await get(server.port, '/health/live').then(
        (res) => res.status,
        (error: NodeJS.ErrnoException) => error.code,
      );
      expect(['ECONNREFUSED', 503]).toContain(late);

      const res = await inFlight;
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toEqual({ finished: true });
      expect(res.headers['x-request-id']).toMatch(UUID);

      await withTimeout(stopping, 5000, 'shutdown');
      // Storage is closed once shutdown resolves.
      await expect(sql`select 1`.execute(server.t.app.bastion.database.db)).rejects.toThrow();

      const messages = server.t.logs.lines.map((line) => line.msg);
      expect(messages).toContain('shutting down');
      expect(messages).toContain('shutdown complete');
      expect(messages.indexOf('shutting down')).toBeLessThan(messages.indexOf('shutdown complete'));
      expect(server.t.logs.lines.find((line) => line.msg === 'shutting down')).toMatchObject({
        reason: 'test',
      });
      // The slow request's access line was written before shutdown completed.
      const access = messages.findIndex(
        (message, index) => message === 'request completed' && server.t.logs.lines[index]?.route === '/slow',
      );
      expect(access).toBeGreaterThanOrEqual(0);
      expect(access).toBeLessThan(messages.indexOf('shutdown complete'));
    },
  );
});

describe('graceful shutdown', () => {
  it('answers a request arriving on a kept-alive connection during the drain with a 503 in the usual shape', async () => {
    const server = await startServer();
    const socket = net.connect(server.port, '127.0.0.1');
    await once(socket, 'connect');
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      received += chunk;
    });
    socket.write('GET /slow HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
    await server.started;

    const stopping = server.running.shutdown('test');
    await untilNotListening(server);
    socket.write('GET /health/live HTTP/1.1\r\nHost: x\r\nX-Request-ID: during-drain\r\n\r\n');
    await withTimeout(once(socket, 'close'), 5000, 'the connection');
    await withTimeout(stopping, 5000, 'shutdown');

    const responses = received.split(/(?=HTTP\/1\.1 )/);
    expect(responses).toHaveLength(2);
    expect(responses[0]).toMatch(/^HTTP\/1\.1 200/);
    expect(responses[0]).toContain('{"finished":true}');
    const [head, body] = responses[1]!.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 503/);
    expect(head).toMatch(/\r\nx-request-id: during-drain\r\n/i);
    expect(head).toMatch(/\r\nconnection: close\r\n/i);
    expect(head).toMatch(/\r\ncontent-type: application\/json/i);
    expect(JSON.parse(body ?? '')).toEqual({
      error: 'service_unavailable',
      message: 'The service is unavailable',
      request_id: 'during-drain',
    });
  });

  it('cuts a request that never finishes once the shutdown timeout passes', async () => {
    const server = await startServer({ env: { BASTION_SHUTDOWN_TIMEOUT_MS: '50' } });
    expect(server.t.config.server.shutdownTimeoutMs).toBe(50);
    const hung = get(server.port, '/hang').then(
      (res) => `status ${res.status}`,
      (error: NodeJS.ErrnoException) => error.code ?? error.message,
    );
    await server.started;

    await withTimeout(server.running.shutdown('test'), 5000, 'shutdown');
    // The client's connection was cut rather than answered.
    expect(await withTimeout(hung, 5000, 'the hung request')).toMatch(/ECONNRESET|socket hang up/);
    expect(
      server.t.logs.lines.some(
        (line) => line.msg === 'shutdown timeout reached; closing remaining connections',
      ),
    ).toBe(true);
    await expect(sql`select 1`.execute(server.t.app.bastion.database.db)).rejects.toThrow();
  });

  it('returns the same promise when asked to shut down twice', async () => {
    const server = await startServer();
    const first = server.running.shutdown('first');
    const second = server.running.shutdown('second');
    expect(second).toBe(first);
    await withTimeout(first, 5000, 'shutdown');
    expect(server.t.logs.lines.filter((line) => line.msg === 'shutting down')).toHaveLength(1);
  });
});
