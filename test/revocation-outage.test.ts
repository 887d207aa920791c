import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import type { TestApp } from './support/app.ts';
import { ADMIN, bearer, login, startIdentityApp } from './support/identity.ts';
import { REDIS_URL_TEST, redisAvailable } from './support/services.ts';

const redisUp = await redisAvailable();

/** A TCP relay in front of the test Redis that can be cut and restored. */
function relay() {
  let up = true;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => {});
    if (!up) return client.destroy();
    const target = new URL(REDIS_URL_TEST);
    const upstream = net.connect(Number(target.port || 6379), target.hostname);
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  return {
    async start(): Promise<string> {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return `redis://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    },
    cut(): void {
      up = false;
      for (const socket of sockets) socket.destroy();
    },
    restore(): void {
      up = true;
    },
    async stop(): Promise<void> {
      this.cut();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * When shared state cannot say whether a session was revoked, `sharedStatePolicy.revocation`
 * decides: fail-closed (the default) refuses with 503 and Retry-After rather than trust a token
 * that may have been revoked; fail-open lets it through. Both recover when Redis returns.
 */
describe.skipIf(!redisUp)('revocation checks while Redis is down', () => {
  const apps: TestApp[] = [];
  const relays: Array<ReturnType<typeof relay>> = [];
  afterAll(async () => {
    for (const app of apps) await app.close();
    for (const r of relays) await r.stop();
  });

  for (const policy of ['fail-closed', 'fail-open'] as const) {
    it(`${policy}: ${policy === 'fail-closed' ? '503 with Retry-After' : 'let through'}, then recovers`, async () => {
      const r = relay();
      relays.push(r);
      const t = await startIdentityApp({
        env: { REDIS_URL: await r.start() },
        configure: (config) => {
          config.identity.revocationRecheckMs = 0;
          config.sharedStatePolicy.revocation = policy;
        },
      });
      apps.push(t);
      const tokens = await login(t.app, ADMIN.email, ADMIN.password);
      const me = () => t.app.inject({ url: '/auth/me', headers: bearer(tokens.access_token) });
      expect((await me()).statusCode).toBe(200);

      r.cut();
      const during = await me();
      if (policy === 'fail-closed') {
        expect(during.statusCode).toBe(503);
        expect(during.headers['retry-after']).toBeDefined();
        expect(during.json()).toMatchObject({ error: 'service_unavailable' });
      } else {
        expect(during.statusCode).toBe(200);
      }

      r.restore();
      const deadline = Date.now() + 10_000;
      let after = await me();
      while (after.statusCode !== 200 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        after = await me();
      }
      expect(after.statusCode).toBe(200);
    });
  }
});
