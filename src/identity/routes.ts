import type { FastifyInstance, FastifyRequest } from 'fastify';
import Type from 'typebox';
import { BastionError, HttpErrors } from '../core/errors.ts';
import type { Principal } from '../core/principal.ts';
import {
  AuditEvent,
  AuditQuery,
  type AuditQueryValue,
  Closed,
  DEFAULT_LIMIT,
  ErrorResponse,
  Page,
} from '../server/schemas.ts';
import { requestContext } from './audit-log.ts';
import { IdentityErrors } from './errors.ts';
import type { IdentityService } from './service.ts';

const Email = Type.String({ minLength: 1, maxLength: 320 });
// Long enough for any passphrase (the policy allows 1024 characters), short enough to bound hashing.
const Password = Type.String({ minLength: 1, maxLength: 4096 });
const Code = Type.String({ minLength: 1, maxLength: 32, description: 'A TOTP code or a backup code' });

const Tokens = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer(),
  refresh_token: Type.String(),
});
const MfaChallenge = Type.Object({ mfa_required: Type.Literal(true), mfa_token: Type.String() });
const Session = Type.Object({
  id: Type.String(),
  created_at: Type.String(),
  last_seen_at: Type.String(),
  expires_at: Type.String(),
  ip: Type.Union([Type.String(), Type.Null()]),
  user_agent: Type.Union([Type.String(), Type.Null()]),
  mfa: Type.Boolean(),
  current: Type.Boolean(),
});
const errors = { 400: ErrorResponse, 401: ErrorResponse, 429: ErrorResponse };

function userOf(request: FastifyRequest): Principal {
  const principal = request.principal;
  // API keys act for an organization, not as a person with a password, sessions or MFA.
  if (principal?.kind !== 'user') {
    throw new BastionError(HttpErrors.forbidden, {
      message: 'This needs a user access token, not an API key',
    });
  }
  return principal;
}

/**
 * The identity endpoints of the contract: login (with MFA), refresh, logout, the caller's
 * account, sessions, password and MFA management, and the JWKS. Every answer is `no-store`.
 */
export function registerIdentityRoutes(app: FastifyInstance, identity: IdentityService): void {
  app.register(async (auth) => {
    auth.addHook('onRequest', async (_request, reply) => {
      reply.header('cache-control', 'no-store');
    });

    auth.post(
      '/auth/login',
      {
        config: { auth: 'public' },
        schema: {
          tags: ['auth'],
          summary: 'Log in with e-mail and password',
          body: Closed({ email: Email, password: Password }),
          response: { 200: Type.Union([Tokens, MfaChallenge]), ...errors },
        },
      },
      async (request) => {
        const body = request.body as { email: string; password: string };
        return identity.login(body.email, body.password, requestContext(request));
      },
    );

    auth.post(
      '/auth/mfa/verify',
      {
        config: { auth: 'public' },
        schema: {
          tags: ['auth'],
          summary: 'Second login step: a TOTP or backup code',
          body: Closed({ mfa_token: Type.String({ minLength: 1, maxLength: 128 }), code: Code }),
          response: { 200: Tokens, ...errors },
        },
      },
      async (request) => {
        const body = request.body as { mfa_token: string; code: string };
        return identity.verifyMfa(body.mfa_token, body.code, requestContext(request));
      },
    );

    auth.post(
      '/auth/refresh',
      {
        config: { auth: 'public' },
        schema: {
          tags: ['auth'],
          summary: 'Exchange a refresh token for a new pair (single use)',
          body: Closed({ refresh_token: Type.String({ minLength: 1, maxLength: 128 }) }),
          response: { 200: Tokens, ...errors },
        },
      },
      async (request) => {
        const body = request.body as { refresh_token: string };
        return identity.refresh(body.refresh_token, requestContext(request));
      },
    );

    auth.post(
      '/auth/logout',
      { config: { auth: 'authenticated' }, schema: { tags: ['auth'], summary: 'End this session' } },
      async (request, reply) => {
        await identity.logout(userOf(request), requestContext(request));
        return reply.code(204).send();
      },
    );

    auth.get(
      '/auth/me',
      { config: { auth: 'authenticated' }, schema: { tags: ['auth'], summary: 'The caller' } },
      async (request) => {
        const principal = request.principal!;
        if (principal.kind === 'api_key') {
          return {
            kind: 'api_key',
            id: principal.id,
            org_id: principal.orgId,
            permissions: [...((await principal.permissionsIn?.(principal.orgId ?? '')) ?? [])].sort(),
          };
        }
        const row = await identity.users.get(principal.id);
        if (!row) throw new BastionError(IdentityErrors.invalidToken);
        const organizations = await identity.organizationsOf(principal.id);
        return {
          kind: 'user',
          ...(await identity.users.view(row)),
          organizations,
          session_id: principal.sessionId,
        };
      },
    );

    auth.get(
      '/auth/sessions',
      {
        config: { auth: 'authenticated' },
        schema: {
          tags: ['auth'],
          summary: 'My live sessions',
          response: { 200: Type.Object({ items: Type.Array(Session) }) },
        },
      },
      async (request) => {
        const principal = userOf(request);
        const sessions = await identity.sessions.list(principal.id);
        return {
          items: sessions.map((session) => ({ ...session, current: session.id === principal.sessionId })),
        };
      },
    );

    auth.delete(
      '/auth/sessions/:id',
      {
        config: { auth: 'authenticated' },
        schema: {
          tags: ['auth'],
          summary: 'End one of my sessions',
          params: Closed({ id: Type.String({ minLength: 1, maxLength: 64 }) }),
        },
      },
      async (request, reply) => {
        const principal = userOf(request);
        const { id } = request.params as { id: string };
        // Someone else's session id answers exactly like one that does not exist.
        if (!(await identity.sessions.find(principal.id, id))) throw new BastionError(HttpErrors.notFound);
        await identity.sessions.revoke(id, 'user');
        await identity.audit.record({
          category: 'authentication',
          action: 'auth.session_revoked',
          actor: { type: 'user', id: principal.id },
          target: { type: 'session', id },
          context: requestContext(request),
        });
        return reply.code(204).send();
      },
    );

    auth.get(
      '/auth/events',
      {
        config: { auth: 'authenticated' },
        schema: {
          tags: ['auth'],
          summary: 'My own authentication events (logins, failures, sessions, MFA), newest first',
          querystring: AuditQuery,
          response: { 200: Page(AuditEvent) },
        },
      },
      async (request) => {
        const principal = userOf(request);
        const query = request.query as AuditQueryValue;
        return identity.audit.list({
          actorId: principal.id,
          limit: query.limit ?? DEFAULT_LIMIT,
          cursor: query.cursor,
          action: query.action,
        });
      },
    );

    auth.post(
      '/auth/password',
      {
        config: { auth: 'authenticated' },
        schema: {
          tags: ['auth'],
          summary: 'Change my password (other sessions end)',
          body: Closed({ current_password: Password, new_password: Password, code: Type.Optional(Code) }),
        },
      },
      async (request, reply) => {
        const body = request.body as { current_password: string; new_password: string; code?: string };
        await identity.account.changePassword(userOf(request), body, requestContext(request));
        return reply.code(204).send();
      },
    );

    auth.post(
      '/auth/email',
      {
        config: { auth: 'authenticated' },
        schema: {
          tags: ['auth'],
          summary: 'Change my e-mail address (password, and MFA code when on)',
          body: Closed({ new_email: Email, password: Password, code: Type.Optional(Code) }),
        },
      },
      async (request) => {
        const body = request.body as { new_email: string; password: string; code?: string };
        return identity.account.changeEmail(userOf(request), body, requestContext(request));
      },
    );

    auth.post(
      '/auth/mfa/totp/setup',
      {
        config: { auth: 'authenticated' },
        schema: {
          tags: ['auth'],
          summary: 'Start TOTP enrolment (fresh login or password required)',
          body: Type.Optional(Closed({ password: Type.Optional(Password) })),
          response: { 200: Type.Object({ secret: Type.String(), otpauth_url: Type.String() }) },
        },
        // The body is optional (a fresh login needs none), but Fastify validates an absent one too.
        preValidation: async (request) => {
          request.body ??= {};
        },
      },
      async (request) => {
        const body = (request.body ?? {}) as { password?: string };
        return identity.account.setupTotp(userOf(request), body, requestContext(request));
      },
    );

    auth.post(
      '/auth/mfa/totp/enable',
      {
        config: { auth: 'authenticated' },
        schema: {
          tags: ['auth'],
          summary: 'Confirm TOTP with a first code; returns 10 backup codes once',
          body: Closed({ code: Code }),
          response: { 200: Type.Object({ backup_codes: Type.Array(Type.String()) }) },
        },
      },
      async (request) => {
        const body = request.body as { code: string };
        return identity.account.enableTotp(userOf(request), body.code, requestContext(request));
      },
    );

    auth.post(
      '/auth/mfa/disable',
      {
        config: { auth: 'authenticated' },
        schema: { tags: ['auth'], summary: 'Turn MFA off', body: Closed({ password: Password, code: Code }) },
      },
      async (request, reply) => {
        const body = request.body as { password: string; code: string };
        await identity.account.disableMfa(userOf(request), body, requestContext(request));
        return reply.code(204).send();
      },
    );

    auth.post(
      '/auth/mfa/backup-codes',
      {
        config: { auth: 'authenticated' },
        schema: {
          tags: ['auth'],
          summary: 'Replace my backup codes (password and a current code)',
          body: Closed({ password: Password, code: Code }),
          response: { 200: Type.Object({ backup_codes: Type.Array(Type.String()) }) },
        },
      },
      async (request) => {
        const body = request.body as { password: string; code: string };
        return identity.account.regenerateBackupCodes(userOf(request), body, requestContext(request));
      },
    );
  });

  app.get(
    '/.well-known/jwks.json',
    {
      config: { auth: 'public' },
      schema: { tags: ['auth'], summary: 'Public keys of the access-token signer' },
    },
    async (_request, reply) => {
      return reply
        .header('cache-control', 'public, max-age=300')
        .type('application/json')
        .send(identity.signingKeys.jwks);
    },
  );
}
