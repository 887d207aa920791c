import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import Type from 'typebox';
import { BastionError, HttpErrors } from '../core/errors.ts';
import {
  ACCESS_COOKIE,
  CSRF_COOKIE,
  cookieValue,
  csrfProblem,
  originProblem,
  REFRESH_COOKIE,
} from '../protection/csrf.ts';
import { ProtectionErrors } from '../protection/errors.ts';
import { Closed } from '../server/schemas.ts';
import { requestContext } from './audit-log.ts';
import type { MfaChallenge, TokenPair } from './login-flow.ts';
import type { IdentityService } from './service.ts';

const CONSOLE_PATH = '/auth/console';

const Session = Type.Object({ signed_in: Type.Literal(true), expires_in: Type.Integer() });
const Challenge = Type.Object({ mfa_required: Type.Literal(true), mfa_token: Type.String() });

/** Options of {@link registerConsoleSessionRoutes}. */
export interface ConsoleSessionOptions {
  /** Send cookies with `Secure` (always in production; HTTPS is then enforced too). */
  secure: boolean;
  /** The longest a session can last, seconds: the refresh cookie's lifetime. */
  sessionSeconds: number;
  /** Origins besides the server's own that may use the console session (`CORS_ORIGINS`). */
  allowedOrigins: ReadonlySet<string>;
}

function cookie(
  name: string,
  value: string,
  path: string,
  maxAge: number,
  secure: boolean,
  httpOnly: boolean,
): string {
  return [
    `${name}=${value}`,
    `Path=${path}`,
    `Max-Age=${maxAge}`,
    'SameSite=Strict',
    ...(httpOnly ? ['HttpOnly'] : []),
    ...(secure ? ['Secure'] : []),
  ].join('; ');
}

/**
 * Cookie sessions for the web console, beside the bearer tokens of API clients: the same login
 * (MFA included), whose tokens are set as `SameSite=Strict` cookies — the access token and the
 * refresh token `HttpOnly` (the refresh cookie is sent only to `/auth/console`), plus a CSRF token
 * the console's script echoes in `X-CSRF-Token` on every unsafe request (see `csrfProblem`).
 */
export function registerConsoleSessionRoutes(
  app: FastifyInstance,
  identity: IdentityService,
  options: ConsoleSessionOptions,
): void {
  const { secure } = options;
  const setSession = (reply: FastifyReply, tokens: TokenPair) => {
    const csrf = randomBytes(32).toString('base64url');
    reply.header('set-cookie', [
      cookie(ACCESS_COOKIE, tokens.access_token, '/', tokens.expires_in, secure, true),
      cookie(REFRESH_COOKIE, tokens.refresh_token, CONSOLE_PATH, options.sessionSeconds, secure, true),
      cookie(CSRF_COOKIE, csrf, '/', options.sessionSeconds, secure, false),
    ]);
    return { signed_in: true as const, expires_in: tokens.expires_in };
  };
  const clearSession = (reply: FastifyReply) => {
    reply.header('set-cookie', [
      cookie(ACCESS_COOKIE, '', '/', 0, secure, true),
      cookie(REFRESH_COOKIE, '', CONSOLE_PATH, 0, secure, true),
      cookie(CSRF_COOKIE, '', '/', 0, secure, false),
    ]);
  };
  // Login CSRF: a form posted from another site must not sign the victim in as the attacker.
  const sameOrigin = (request: FastifyRequest) => {
    if (originProblem(request, options.allowedOrigins)) throw new BastionError(ProtectionErrors.csrfFailed);
  };
  // Refresh and logout act on the ambient cookies: origin and token, like any unsafe request.
  const withToken = (request: FastifyRequest) => {
    if (csrfProblem(request, options.allowedOrigins)) throw new BastionError(ProtectionErrors.csrfFailed);
  };
  const answer = (reply: FastifyReply, result: TokenPair | MfaChallenge) =>
    'mfa_required' in result ? result : setSession(reply, result);
  const tags = ['auth'];

  app.post(
    `${CONSOLE_PATH}/login`,
    {
      config: { auth: 'public' },
      schema: {
        tags,
        summary: 'Console login: sets the session cookies (or asks for the MFA code)',
        body: Closed({ email: Type.String({ maxLength: 320 }), password: Type.String({ maxLength: 4096 }) }),
        response: { 200: Type.Union([Session, Challenge]) },
      },
    },
    async (request, reply) => {
      sameOrigin(request);
      const body = request.body as { email: string; password: string };
      return answer(reply, await identity.login(body.email, body.password, requestContext(request)));
    },
  );

  app.post(
    `${CONSOLE_PATH}/mfa/verify`,
    {
      config: { auth: 'public' },
      schema: {
        tags,
        summary: 'Console login, second step: sets the session cookies',
        body: Closed({
          mfa_token: Type.String({ minLength: 1, maxLength: 128 }),
          code: Type.String({ maxLength: 64 }),
        }),
        response: { 200: Session },
      },
    },
    async (request, reply) => {
      sameOrigin(request);
      const body = request.body as { mfa_token: string; code: string };
      return setSession(reply, await identity.verifyMfa(body.mfa_token, body.code, requestContext(request)));
    },
  );

  app.post(
    `${CONSOLE_PATH}/refresh`,
    {
      config: { auth: 'public' },
      schema: {
        tags,
        summary: 'Renews the session cookies (single-use refresh cookie)',
        response: { 200: Session },
      },
    },
    async (request: FastifyRequest, reply) => {
      withToken(request);
      const refresh = cookieValue(request.headers.cookie, REFRESH_COOKIE);
      if (refresh === null) throw new BastionError(HttpErrors.unauthorized);
      return setSession(reply, await identity.refresh(refresh, requestContext(request)));
    },
  );

  app.post(
    `${CONSOLE_PATH}/logout`,
    {
      config: { auth: 'authenticated' },
      schema: { tags, summary: 'Ends the console session and clears its cookies' },
    },
    async (request, reply) => {
      const principal = request.principal;
      if (principal?.kind !== 'user') throw new BastionError(HttpErrors.forbidden);
      await identity.logout(principal, requestContext(request));
      clearSession(reply);
      return reply.code(204).send();
    },
  );
}
