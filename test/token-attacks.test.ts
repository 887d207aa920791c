import { KeyObject, randomBytes, sign } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CryptoKey, decodeJwt, exportJWK, generateKeyPair, type JWTPayload, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../src/core/ids.ts';
import type { TestApp } from './support/app.ts';
import { ADMIN, bearer, call, createUser, login, startIdentityApp, type Tokens } from './support/identity.ts';

const ME = '/auth/me';
const ADMIN_USERS = '/api/v1/admin/users';
const PROBE = '/api/v1/probe-orgs/:org';

type Header = Record<string, unknown>;

function segment(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/** A compact JWS with any header at all, signed with an Ed25519 key (jose refuses some headers). */
function signEd25519(header: Header, payload: unknown, key: CryptoKey): string {
  const input = `${segment(header)}.${segment(payload)}`;
  const signature = sign(null, Buffer.from(input, 'utf8'), KeyObject.from(key));
  return `${input}.${signature.toString('base64url')}`;
}

function splitToken(token: string): [string, string, string] {
  const [header, payload, signature] = token.split('.');
  return [header!, payload!, signature!];
}

describe('access-token attacks', () => {
  let t: TestApp;
  let adminTokens: Tokens;
  let adminId: string;
  let aliceId: string;
  let aliceTokens: Tokens;
  let attacker: { publicKey: CryptoKey; privateKey: CryptoKey };
  let jkuServer: http.Server;
  let jkuHits = 0;
  let jkuUrl: string;

  /** The claims of a valid admin token, re-dated to now: what a forger would want to assert. */
  function adminClaims(overrides: Record<string, unknown> = {}): JWTPayload {
    const now = Math.floor(Date.now() / 1000);
    const claims: Record<string, unknown> = {
      ...decodeJwt(adminTokens.access_token),
      jti: randomBytes(16).toString('base64url'),
      iat: now,
      exp: now + 600,
      ...overrides,
    };
    for (const [name, value] of Object.entries(claims)) if (value === undefined) delete claims[name];
    return claims;
  }

  function ourKey(): { id: string; privateKey: CryptoKey } {
    return t.app.bastion.identity.signingKeys.active;
  }

  /** Signed with our real key; header and claims as given (defaults: a valid admin token). */
  function signedByUs(claims: JWTPayload = adminClaims(), header: Header = {}): string {
    const key = ourKey();
    return signEd25519({ alg: 'EdDSA', typ: 'at+jwt', kid: key.id, ...header }, claims, key.privateKey);
  }

  async function expectRefused(token: string, label = token.slice(0, 60)): Promise<void> {
    for (const url of [ME, ADMIN_USERS]) {
      const response = await call(t.app, token, 'GET', url);
      expect(response.statusCode, `${label} on ${url}`).toBe(401);
      expect(response.json().error, `${label} on ${url}`).toBe('unauthorized');
    }
  }

  beforeAll(async () => {
    t = await startIdentityApp({
      // A busy machine must not turn answers into 503s.
      configure: (config) => {
        config.loadShedding.enabled = false;
      },
      routes: (app) => {
        // A tenant-scoped route (the reference API's own may not exist yet): route-auth decides.
        app.get(PROBE, { config: { auth: 'org:read' } }, async (request) => ({
          org: (request.params as { org: string }).org,
        }));
      },
    });
    adminTokens = await login(t.app, ADMIN.email, ADMIN.password);
    adminId = decodeJwt(adminTokens.access_token).sub!;
    aliceId = await createUser(t.app, adminTokens.access_token, 'alice@example.test');
    aliceTokens = await login(t.app, 'alice@example.test', 'Velvet-Harbor-Quarry-317');
    attacker = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    jkuServer = http.createServer(async (_request, response) => {
      jkuHits += 1;
      const jwk = { ...(await exportJWK(attacker.publicKey)), kid: 'attacker', alg: 'EdDSA', use: 'sig' };
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => jkuServer.listen(0, '127.0.0.1', resolve));
    jkuUrl = `http://127.0.0.1:${(jkuServer.address() as AddressInfo).port}/jwks.json`;
  });

  afterAll(async () => {
    await new Promise((resolve) => jkuServer?.close(resolve));
    await t?.close();
  });

  describe('controls (so the attacks below can fail)', () => {
    it('a real admin token works on /auth/me and on a permission route', async () => {
      const me = await call(t.app, adminTokens.access_token, 'GET', ME);
      expect(me.statusCode).toBe(200);
      expect(me.json()).toMatchObject({ kind: 'user', id: adminId, platform_admin: true });
      expect((await call(t.app, adminTokens.access_token, 'GET', ADMIN_USERS)).statusCode).toBe(200);
    });

    it('a token the test forges with our key and valid claims works (the forging helper is right)', async () => {
      const token = signedByUs();
      expect((await call(t.app, token, 'GET', ME)).statusCode).toBe(200);
      expect((await call(t.app, token, 'GET', ADMIN_USERS)).statusCode).toBe(200);
    });

    it("a non-admin's real token is 403 on the permission route, 200 on /auth/me", async () => {
      expect((await call(t.app, aliceTokens.access_token, 'GET', ME)).statusCode).toBe(200);
      expect((await call(t.app, aliceTokens.access_token, 'GET', ADMIN_USERS)).statusCode).toBe(403);
    });

    it('the JWKS holds only public Ed25519 material', async () => {
      const response = await t.app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
      expect(response.statusCode).toBe(200);
      const { keys } = response.json() as { keys: Array<Record<string, unknown>> };
      expect(keys.length).toBeGreaterThanOrEqual(1);
      for (const key of keys) {
        expect(Object.keys(key).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x']);
        expect(key).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
      }
      expect(response.body).not.toMatch(/"(d|p|q|dp|dq|qi|k)"\s*:/);
      expect(keys.map((key) => key.kid)).toContain(ourKey().id);
    });
  });

  describe('no credentials or the wrong shape', () => {
    it.each([
      ['no header', undefined],
      ['empty bearer', 'Bearer '],
      ['Basic scheme', `Basic ${Buffer.from(`${ADMIN.email}:${ADMIN.password}`).toString('base64')}`],
      ['garbage', 'Bearer not-a-token'],
      ['two dots, empty parts', 'Bearer ..'],
    ])('%s → 401', async (_name, authorization) => {
      for (const url of [ME, ADMIN_USERS]) {
        const response = await t.app.inject({
          method: 'GET',
          url,
          headers: authorization === undefined ? {} : { authorization },
        });
        expect(response.statusCode).toBe(401);
      }
    });

    it('the scheme in any case, with spaces or tabs around the token → accepted', async () => {
      const token = adminTokens.access_token;
      for (const authorization of [
        `bearer ${token}`,
        `BEARER ${token}`,
        `Bearer\t${token}`,
        `Bearer   ${token}  `,
      ]) {
        const response = await t.app.inject({ method: 'GET', url: ADMIN_USERS, headers: { authorization } });
        expect(response.statusCode, JSON.stringify(authorization.slice(0, 10))).toBe(200);
      }
    });

    it('a valid token followed by junk in the header → 401', async () => {
      for (const authorization of [
        `Bearer ${adminTokens.access_token} x`,
        `Bearer ${adminTokens.access_token}x`,
        `Bearer ${adminTokens.access_token},${adminTokens.access_token}`,
        `Bearer ${adminTokens.access_token}\tx`,
        `Bearer x ${adminTokens.access_token}`,
      ]) {
        const response = await t.app.inject({ method: 'GET', url: ADMIN_USERS, headers: { authorization } });
        expect(response.statusCode, authorization.slice(-20)).toBe(401);
      }
    });
  });

  describe('algorithm confusion', () => {
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      it(`alg ${alg}, without and with a signature part → 401`, async () => {
        const header = segment({ alg, typ: 'at+jwt', kid: ourKey().id });
        const payload = segment(adminClaims());
        const [, , realSignature] = splitToken(adminTokens.access_token);
        await expectRefused(`${header}.${payload}.`, `${alg} empty signature`);
        await expectRefused(`${header}.${payload}`, `${alg} two parts`);
        await expectRefused(`${header}.${payload}.${realSignature}`, `${alg} with a signature`);
        await expectRefused(`${header}.${payload}.AAAA`, `${alg} with junk signature`);
      });
    }

    it('HS256 with our public key (JWK x bytes, x text, JWK JSON, JWKS JSON) as the HMAC secret → 401', async () => {
      const jwks = t.app.bastion.identity.signingKeys.jwks;
      const jwk = (JSON.parse(jwks) as { keys: Array<{ x: string; kid: string }> }).keys.find(
        (key) => key.kid === ourKey().id,
      )!;
      const secrets: Array<[string, Uint8Array]> = [
        ['x bytes', Buffer.from(jwk.x, 'base64url')],
        ['x text', Buffer.from(jwk.x, 'utf8')],
        ['JWK JSON', Buffer.from(JSON.stringify(jwk), 'utf8')],
        ['JWKS JSON', Buffer.from(jwks, 'utf8')],
      ];
      for (const [name, secret] of secrets) {
        for (const alg of ['HS256', 'HS512']) {
          const token = await new SignJWT(adminClaims())
            .setProtectedHeader({ alg, typ: 'at+jwt', kid: ourKey().id })
            .sign(secret);
          await expectRefused(token, `${alg} with ${name}`);
        }
      }
    });

    it('RS256 and ES256 tokens (attacker keys, our kid) → 401', async () => {
      for (const alg of ['RS256', 'ES256', 'PS256']) {
        const { privateKey } = await generateKeyPair(alg);
        const token = await new SignJWT(adminClaims())
          .setProtectedHeader({ alg, typ: 'at+jwt', kid: ourKey().id })
          .sign(privateKey);
        await expectRefused(token, alg);
      }
    });

    it('alg Ed25519 (the other name of the algorithm) with our key → 401: only EdDSA is accepted', async () => {
      await expectRefused(signedByUs(adminClaims(), { alg: 'Ed25519' }));
    });
  });

  describe('tampering', () => {
    it('stripped signature → 401', async () => {
      const [header, payload] = splitToken(adminTokens.access_token);
      await expectRefused(`${header}.${payload}.`, 'empty signature');
      await expectRefused(`${header}.${payload}`, 'two parts');
    });

    it('altered signature → 401', async () => {
      const [header, payload, signature] = splitToken(adminTokens.access_token);
      const bytes = Buffer.from(signature, 'base64url');
      for (const index of [0, 31, 63]) {
        const altered = Buffer.from(bytes);
        altered[index] = altered[index]! ^ 0x01;
        await expectRefused(`${header}.${payload}.${altered.toString('base64url')}`, `bit ${index}`);
      }
      const truncated = bytes.subarray(0, 63).toString('base64url');
      await expectRefused(`${header}.${payload}.${truncated}`, 'truncated');
      const padded = Buffer.concat([bytes, Buffer.from([0])]).toString('base64url');
      await expectRefused(`${header}.${payload}.${padded}`, 'extended');
    });

    it("altered payload (alice's token with sub = the admin) keeping the signature → 401", async () => {
      // Verified tokens are cached by their signature's end: the real token goes first, so the
      // forgery shares its cache key and must still be refused.
      expect((await call(t.app, aliceTokens.access_token, 'GET', ME)).statusCode).toBe(200);
      const [header, , signature] = splitToken(aliceTokens.access_token);
      const claims = { ...decodeJwt(aliceTokens.access_token), sub: adminId };
      await expectRefused(`${header}.${segment(claims)}.${signature}`);
      // And the real token still works as alice, not as the admin.
      const me = await call(t.app, aliceTokens.access_token, 'GET', ME);
      expect(me.json()).toMatchObject({ id: aliceId, platform_admin: false });
    });

    it('altered header (typ/kid changed) keeping the signature → 401', async () => {
      const [, payload, signature] = splitToken(adminTokens.access_token);
      const header = segment({ alg: 'EdDSA', typ: 'at+jwt', kid: ourKey().id, extra: 1 });
      await expectRefused(`${header}.${payload}.${signature}`);
    });
  });

  describe('keys chosen by the token', () => {
    it("header jwk with the attacker's own Ed25519 key, signed by it → 401 (with and without our kid)", async () => {
      const jwk = await exportJWK(attacker.publicKey);
      const claims = adminClaims();
      await expectRefused(signEd25519({ alg: 'EdDSA', typ: 'at+jwt', jwk }, claims, attacker.privateKey));
      await expectRefused(
        signEd25519({ alg: 'EdDSA', typ: 'at+jwt', kid: ourKey().id, jwk }, claims, attacker.privateKey),
      );
      // Even signed by us, a token that carries a key header is refused outright.
      await expectRefused(signedByUs(claims, { jwk }), 'jwk header signed by us');
    });

    it('jku / x5u pointing elsewhere → 401, and the URL is never fetched', async () => {
      const claims = adminClaims();
      for (const name of ['jku', 'x5u']) {
        await expectRefused(
          signEd25519(
            { alg: 'EdDSA', typ: 'at+jwt', kid: 'attacker', [name]: jkuUrl },
            claims,
            attacker.privateKey,
          ),
          `${name} attacker kid`,
        );
        await expectRefused(
          signEd25519(
            { alg: 'EdDSA', typ: 'at+jwt', kid: ourKey().id, [name]: jkuUrl },
            claims,
            attacker.privateKey,
          ),
          `${name} our kid`,
        );
        await expectRefused(signedByUs(claims, { [name]: jkuUrl }), `${name} signed by us`);
      }
      await expectRefused(signedByUs(claims, { x5c: ['MIIB'] }), 'x5c');
      await expectRefused(signedByUs(claims, { crit: ['exp'] }), 'crit');
      await expectRefused(signedByUs(claims, { b64: false, crit: ['b64'] }), 'b64');
      expect(jkuHits).toBe(0);
    });

    it('a kid not in our set → 401, even when signed with our real key', async () => {
      const claims = adminClaims();
      await expectRefused(
        signEd25519({ alg: 'EdDSA', typ: 'at+jwt', kid: newId() }, claims, attacker.privateKey),
        'attacker key, unknown kid',
      );
      await expectRefused(signedByUs(claims, { kid: newId() }), 'our key, unknown kid');
      await expectRefused(signedByUs(claims, { kid: undefined }), 'our key, no kid');
      await expectRefused(signedByUs(claims, { kid: 42 }), 'our key, numeric kid');
    });

    it('a kid with path or SQL junk → 401, and nothing breaks', async () => {
      const claims = adminClaims();
      const kids = [
        '../../../../../../dev/null',
        '/etc/passwd',
        "' OR '1'='1",
        "x'; DROP TABLE signing_keys; --",
        `${ourKey().id}' --`,
        `${ourKey().id}\u0000`,
        '__proto__',
        'constructor',
        'k'.repeat(3000),
      ];
      for (const kid of kids) await expectRefused(signedByUs(claims, { kid }), `kid ${kid.slice(0, 30)}`);
      const count = await t.app.bastion.database.db
        .selectFrom('signing_keys')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow();
      expect(Number(count.n)).toBeGreaterThanOrEqual(1);
      expect((await call(t.app, adminTokens.access_token, 'GET', ME)).statusCode).toBe(200);
    });
  });

  describe('validly signed by us, but the claims or type are wrong', () => {
    const now = () => Math.floor(Date.now() / 1000);

    it('expired → 401', async () => {
      await expectRefused(signedByUs(adminClaims({ iat: now() - 3600, exp: now() - 60 })));
    });

    it('not yet valid (nbf in the future) → 401', async () => {
      await expectRefused(signedByUs(adminClaims({ nbf: now() + 3600 })));
    });

    it('wrong iss, wrong aud → 401', async () => {
      await expectRefused(signedByUs(adminClaims({ iss: 'https://evil.example' })), 'iss');
      await expectRefused(signedByUs(adminClaims({ iss: undefined })), 'no iss');
      await expectRefused(signedByUs(adminClaims({ aud: 'another-api' })), 'aud');
      await expectRefused(signedByUs(adminClaims({ aud: undefined })), 'no aud');
    });

    it('wrong typ (JWT instead of at+jwt, or none) → 401', async () => {
      await expectRefused(signedByUs(adminClaims(), { typ: 'JWT' }), 'JWT');
      await expectRefused(signedByUs(adminClaims(), { typ: undefined }), 'no typ');
    });

    it('missing sid, jti, sub, exp or iat → 401', async () => {
      for (const claim of ['sid', 'jti', 'sub', 'exp', 'iat']) {
        await expectRefused(signedByUs(adminClaims({ [claim]: undefined })), `no ${claim}`);
      }
      await expectRefused(signedByUs(adminClaims({ sid: 12 })), 'numeric sid');
    });
  });

  describe('other credentials in the bearer slot', () => {
    it('a refresh token presented as an access token → 401 (and it still refreshes)', async () => {
      const tokens = await login(t.app, 'alice@example.test', 'Velvet-Harbor-Quarry-317');
      await expectRefused(tokens.refresh_token, 'refresh token as bearer');
      const refreshed = await t.app.inject({
        method: 'POST',
        url: '/auth/refresh',
        payload: { refresh_token: tokens.refresh_token },
      });
      expect(refreshed.statusCode).toBe(200);
    });

    it('API-key-shaped garbage (Bearer and X-API-Key) → 401', async () => {
      const garbage = [
        'bst_',
        'bst_x',
        `bst_${randomBytes(32).toString('base64url')}`,
        `bst_${'0'.repeat(16)}_${randomBytes(32).toString('base64url')}`,
        `bst_${'A'.repeat(5000)}`,
      ];
      for (const key of garbage) {
        await expectRefused(key, `bearer ${key.slice(0, 20)}`);
        for (const url of [ME, ADMIN_USERS]) {
          const response = await t.app.inject({ method: 'GET', url, headers: { 'x-api-key': key } });
          expect(response.statusCode, `x-api-key ${key.slice(0, 20)}`).toBe(401);
        }
      }
    });

    it('an X-API-Key with garbage wins over a valid bearer token: no silent fallback', async () => {
      const response = await t.app.inject({
        method: 'GET',
        url: ME,
        headers: { ...bearer(adminTokens.access_token), 'x-api-key': 'bst_garbage' },
      });
      expect(response.statusCode).toBe(401);
    });
  });

  describe('sessions behind tokens', () => {
    it('logout, then the same access token → 401 at once; its refresh token too', async () => {
      const tokens = await login(t.app, 'alice@example.test', 'Velvet-Harbor-Quarry-317');
      expect((await call(t.app, tokens.access_token, 'GET', ME)).statusCode).toBe(200);
      expect((await call(t.app, tokens.access_token, 'POST', '/auth/logout')).statusCode).toBe(204);
      await expectRefused(tokens.access_token, 'after logout');
      expect((await call(t.app, tokens.access_token, 'POST', '/auth/logout')).statusCode).toBe(401);
      const refresh = await t.app.inject({
        method: 'POST',
        url: '/auth/refresh',
        payload: { refresh_token: tokens.refresh_token },
      });
      expect(refresh.statusCode).toBe(401);
    });

    it('a replayed refresh token revokes the whole family and records a security event', async () => {
      const first = await login(t.app, 'alice@example.test', 'Velvet-Harbor-Quarry-317');
      const sessionId = decodeJwt(first.access_token).sid as string;
      const refresh = (token: string) =>
        t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: token } });
      const second = (await refresh(first.refresh_token)).json() as Tokens;
      const third = (await refresh(second.refresh_token)).json() as Tokens;
      expect(decodeJwt(third.access_token).sid).toBe(sessionId);
      expect((await call(t.app, third.access_token, 'GET', ME)).statusCode).toBe(200);

      const replay = await refresh(first.refresh_token);
      expect(replay.statusCode).toBe(401);
      expect(replay.json().error).toBe('invalid_refresh_token');

      // The newest refresh token of the family is dead, and so is every access token of it.
      expect((await refresh(third.refresh_token)).statusCode).toBe(401);
      for (const token of [first.access_token, second.access_token, third.access_token]) {
        await expectRefused(token, 'family access token');
      }
      const events = await t.app.bastion.database.db
        .selectFrom('audit_events')
        .selectAll()
        .where('action', '=', 'auth.refresh_token_reused')
        .where('target_id', '=', sessionId)
        .execute();
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ category: 'security', outcome: 'failure', actor_id: aliceId });
      // Other sessions of the same user are untouched.
      expect((await call(t.app, aliceTokens.access_token, 'GET', ME)).statusCode).toBe(200);
    });

    it('one refresh token sent five times at once: at most one exchange succeeds', async () => {
      const tokens = await login(t.app, 'alice@example.test', 'Velvet-Harbor-Quarry-317');
      const answers = await Promise.all(
        Array.from({ length: 5 }, () =>
          t.app.inject({
            method: 'POST',
            url: '/auth/refresh',
            payload: { refresh_token: tokens.refresh_token },
          }),
        ),
      );
      const codes = answers.map((answer) => answer.statusCode).sort();
      expect(codes.filter((code) => code === 200).length).toBeLessThanOrEqual(1);
      expect(codes.filter((code) => code === 401).length).toBeGreaterThanOrEqual(4);
      // The losers were replays: the family is gone, including the winner's new tokens.
      for (const answer of answers.filter((item) => item.statusCode === 200)) {
        const won = answer.json() as Tokens;
        await expectRefused(won.access_token, 'winner access token');
        const again = await t.app.inject({
          method: 'POST',
          url: '/auth/refresh',
          payload: { refresh_token: won.refresh_token },
        });
        expect(again.statusCode).toBe(401);
      }
    });

    it('refresh tokens that are unknown, malformed or oversized → 401 or 400, never 500', async () => {
      for (const token of [randomBytes(32).toString('base64url'), 'x', 'a.b.c', "' OR 1=1 --"]) {
        const response = await t.app.inject({
          method: 'POST',
          url: '/auth/refresh',
          payload: { refresh_token: token },
        });
        // SQL in the token is refused by attack detection (403) before identity sees it.
        expect(response.statusCode, token).toBe(token.startsWith("'") ? 403 : 401);
      }
      for (const payload of [{ refresh_token: 'x'.repeat(200) }, { refresh_token: null }, {}, []]) {
        const response = await t.app.inject({ method: 'POST', url: '/auth/refresh', payload });
        expect(response.statusCode, JSON.stringify(payload).slice(0, 30)).toBe(400);
      }
      // Fastify coerces scalars and one-element arrays to the declared string: refused as unknown.
      for (const payload of [{ refresh_token: 42 }, { refresh_token: ['x'] }]) {
        const response = await t.app.inject({ method: 'POST', url: '/auth/refresh', payload });
        expect(response.statusCode, JSON.stringify(payload)).toBe(401);
      }
    });
  });

  it('no attack above caused a server error, and no token or password reached the logs', () => {
    const errors = t.logs.lines.filter((line) => (line.level as number) >= 50);
    expect(errors.map((line) => line.msg)).toEqual([]);
    for (const secret of [
      adminTokens.access_token,
      adminTokens.refresh_token,
      aliceTokens.refresh_token,
      splitToken(aliceTokens.access_token)[2],
      ADMIN.password,
      'Velvet-Harbor-Quarry-317',
    ]) {
      expect(t.logs.text).not.toContain(secret);
    }
  });

  describe('organizations', () => {
    let orgA: string;
    let orgB: string;

    beforeAll(async () => {
      const db = t.app.bastion.database.db;
      const at = new Date().toISOString();
      orgA = newId();
      orgB = newId();
      await db
        .insertInto('organizations')
        .values([
          { id: orgA, name: 'Org A', created_by: adminId, created_at: at, updated_at: at },
          { id: orgB, name: 'Org B', created_by: adminId, created_at: at, updated_at: at },
        ])
        .execute();
      await db
        .insertInto('memberships')
        .values({ org_id: orgA, user_id: aliceId, role: 'viewer', created_at: at, updated_at: at })
        .execute();
      await t.app.bastion.identity.memberships.changed();
    });

    it("a member of org A gets 200 in A and 404 in B, exactly like an organization that doesn't exist", async () => {
      const own = await call(t.app, aliceTokens.access_token, 'GET', PROBE.replace(':org', orgA));
      expect(own.statusCode).toBe(200);
      const other = await call(t.app, aliceTokens.access_token, 'GET', PROBE.replace(':org', orgB));
      const missing = await call(t.app, aliceTokens.access_token, 'GET', PROBE.replace(':org', newId()));
      expect(other.statusCode).toBe(404);
      expect(missing.statusCode).toBe(404);
      const { request_id: _a, ...otherBody } = other.json() as Record<string, unknown>;
      const { request_id: _b, ...missingBody } = missing.json() as Record<string, unknown>;
      expect(otherBody).toEqual(missingBody);
    });

    it('a forged token (alice re-signed by an attacker) gets 401 in A, not 404 or 200', async () => {
      const claims = { ...decodeJwt(aliceTokens.access_token), jti: 'forged' };
      const token = signEd25519(
        { alg: 'EdDSA', typ: 'at+jwt', kid: ourKey().id },
        claims,
        attacker.privateKey,
      );
      const response = await call(t.app, token, 'GET', PROBE.replace(':org', orgA));
      expect(response.statusCode).toBe(401);
    });

    it('after removal from A, the same token gets 404 in A at once', async () => {
      await t.app.bastion.database.db
        .deleteFrom('memberships')
        .where('org_id', '=', orgA)
        .where('user_id', '=', aliceId)
        .execute();
      await t.app.bastion.identity.memberships.changed();
      const response = await call(t.app, aliceTokens.access_token, 'GET', PROBE.replace(':org', orgA));
      expect(response.statusCode).toBe(404);
    });
  });
});
