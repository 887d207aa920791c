import { afterAll, describe, expect, it } from 'vitest';
import type { TestApp } from './support/app.ts';
import { ADMIN, bearer, login, startIdentityApp } from './support/identity.ts';
import { relay } from './support/redis-relay.ts';
import { redisAvailable } from './support/services.ts';

const redisUp = await redisAvailable();

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
