import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from './support/app.ts';
import { ADMIN, bearer, login, startIdentityApp } from './support/identity.ts';

const HOST = 'bastion.example';
const OWN = `http://${HOST}`;
const CONSOLE_ORIGIN = 'https://console.example.com';

let t: TestApp;
let app: FastifyInstance;

beforeAll(async () => {
  t = await startIdentityApp({ env: { CORS_ORIGINS: CONSOLE_ORIGIN } });
  app = t.app;
});
afterAll(async () => {
  await t.close();
});

/** Cookie name → the whole Set-Cookie line. */
function setCookies(response: LightMyRequestResponse): Map<string, string> {
  const raw = response.headers['set-cookie'];
  const lines = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  return new Map(lines.map((line) => [line.slice(0, line.indexOf('=')), line]));
}

function cookieValueOf(line: string | undefined): string {
  return line?.slice(line.indexOf('=') + 1, line.indexOf(';')) ?? '';
}

interface ConsoleSession {
  access: string;
  refresh: string;
  csrf: string;
}

async function consoleLogin(): Promise<ConsoleSession> {
  const response = await app.inject({
    method: 'POST',
    url: '/auth/console/login',
    headers: { host: HOST, origin: OWN },
    payload: { email: ADMIN.email, password: ADMIN.password },
  });
  expect(response.statusCode, response.body).toBe(200);
  const cookies = setCookies(response);
  return {
    access: cookieValueOf(cookies.get('bastion_access')),
    refresh: cookieValueOf(cookies.get('bastion_refresh')),
    csrf: cookieValueOf(cookies.get('bastion_csrf')),
  };
}

const jar = (session: ConsoleSession) =>
  `bastion_access=${session.access}; bastion_refresh=${session.refresh}; bastion_csrf=${session.csrf}`;

describe('console cookie sessions', () => {
  it('login sets SameSite=Strict cookies: the tokens HttpOnly, the refresh token only for /auth/console', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/auth/console/login',
      headers: { host: HOST, origin: OWN },
      payload: { email: ADMIN.email, password: ADMIN.password },
    });
    expect(response.json()).toMatchObject({ signed_in: true });
    expect(response.body).not.toContain('eyJ');
    const cookies = setCookies(response);
    expect(cookies.get('bastion_access')).toMatch(/; Path=\/; Max-Age=\d+; SameSite=Strict; HttpOnly$/);
    expect(cookies.get('bastion_refresh')).toMatch(
      /; Path=\/auth\/console; Max-Age=\d+; SameSite=Strict; HttpOnly$/,
    );
    expect(cookies.get('bastion_csrf')).toMatch(/; Path=\/; Max-Age=\d+; SameSite=Strict$/);
    expect(response.headers['cache-control']).toBe('no-store');
  });

  it('a cookie-authenticated GET needs no CSRF token', async () => {
    const session = await consoleLogin();
    const me = await app.inject({ url: '/auth/me', headers: { host: HOST, cookie: jar(session) } });
    expect(me.statusCode).toBe(200);
    expect(me.json().email).toBe(ADMIN.email);
  });

  it('refuses unsafe cookie-authenticated requests without the token, from another origin, or naming no origin', async () => {
    const session = await consoleLogin();
    const post = (headers: Record<string, string>) =>
      app.inject({
        method: 'POST',
        url: '/api/v1/organizations',
        headers: { host: HOST, cookie: jar(session), ...headers },
        payload: { name: 'Forged' },
      });
    const cases: Array<[string, Record<string, string>]> = [
      ['no token', { origin: OWN }],
      ['wrong token', { origin: OWN, 'x-csrf-token': `${session.csrf.slice(0, -2)}xx` }],
      ['token but a foreign origin', { origin: 'https://evil.example', 'x-csrf-token': session.csrf }],
      ['token but a look-alike origin', { origin: `${OWN}.evil.example`, 'x-csrf-token': session.csrf }],
      [
        'token, no Origin, foreign Referer',
        { referer: 'https://evil.example/page', 'x-csrf-token': session.csrf },
      ],
      ['token, neither Origin nor Referer', { 'x-csrf-token': session.csrf }],
    ];
    for (const [label, headers] of cases) {
      const response = await post(headers);
      expect(response.statusCode, label).toBe(403);
      expect(response.json().error, label).toBe('csrf_failed');
    }
    const organizations = await app.inject({
      url: '/api/v1/organizations',
      headers: { host: HOST, cookie: jar(session) },
    });
    expect(organizations.json().items.map((o: { name: string }) => o.name)).not.toContain('Forged');

    const ok = await post({ origin: OWN, 'x-csrf-token': session.csrf });
    expect(ok.statusCode).toBe(201);
    const fromConsoleOrigin = await post({ origin: CONSOLE_ORIGIN, 'x-csrf-token': session.csrf });
    expect(fromConsoleOrigin.statusCode).toBe(201);
    const sameOriginReferer = await post({ referer: `${OWN}/console/orgs`, 'x-csrf-token': session.csrf });
    expect(sameOriginReferer.statusCode).toBe(201);
  });

  it('bearer-token requests are not subject to CSRF checks (no ambient credentials)', async () => {
    const tokens = await login(app, ADMIN.email, ADMIN.password);
    const response = await app.inject({
      method: 'POST',
      url: '/api/v1/organizations',
      headers: { ...bearer(tokens.access_token), origin: 'https://evil.example' },
      payload: { name: 'Via API' },
    });
    expect(response.statusCode).toBe(201);
  });

  it('refresh rotates the cookies (with the token), and a replayed refresh cookie ends the session', async () => {
    const session = await consoleLogin();
    const refresh = (
      s: ConsoleSession,
      headers: Record<string, string> = { origin: OWN, 'x-csrf-token': s.csrf },
    ) =>
      app.inject({
        method: 'POST',
        url: '/auth/console/refresh',
        headers: { host: HOST, cookie: jar(s), ...headers },
      });
    expect((await refresh(session, { origin: OWN })).statusCode).toBe(403);
    const renewed = await refresh(session);
    expect(renewed.statusCode).toBe(200);
    const cookies = setCookies(renewed);
    const next = {
      access: cookieValueOf(cookies.get('bastion_access')),
      refresh: cookieValueOf(cookies.get('bastion_refresh')),
      csrf: cookieValueOf(cookies.get('bastion_csrf')),
    };
    expect(next.refresh).not.toBe(session.refresh);
    expect(
      (await app.inject({ url: '/auth/me', headers: { host: HOST, cookie: jar(next) } })).statusCode,
    ).toBe(200);
    // The old refresh cookie again: the whole session family is revoked.
    expect((await refresh(session)).statusCode).toBe(401);
    expect(
      (await app.inject({ url: '/auth/me', headers: { host: HOST, cookie: jar(next) } })).statusCode,
    ).toBe(401);
  });

  it('login from another site is refused (login CSRF); logout clears the cookies', async () => {
    const forged = await app.inject({
      method: 'POST',
      url: '/auth/console/login',
      headers: { host: HOST, origin: 'https://evil.example' },
      payload: { email: ADMIN.email, password: ADMIN.password },
    });
    expect(forged.statusCode).toBe(403);
    expect(forged.headers['set-cookie']).toBeUndefined();

    const session = await consoleLogin();
    const out = await app.inject({
      method: 'POST',
      url: '/auth/console/logout',
      headers: { host: HOST, cookie: jar(session), origin: OWN, 'x-csrf-token': session.csrf },
    });
    expect(out.statusCode).toBe(204);
    expect(setCookies(out).get('bastion_access')).toMatch(/^bastion_access=; .*Max-Age=0/);
    expect(
      (await app.inject({ url: '/auth/me', headers: { host: HOST, cookie: jar(session) } })).statusCode,
    ).toBe(401);
  });
});
