import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { startTestApp, type TestApp, type TestAppOptions } from './app.ts';

/** The platform admin every identity test app starts with. */
export const ADMIN = { email: 'admin@bastion.test', password: 'Orbit-Lantern-Meadow-42' } as const;

/** A strong password the policy accepts (for users made in tests). */
export const STRONG_PASSWORD = 'Velvet-Harbor-Quarry-317';

/** Starts a test app with the platform admin and outbound calls to loopback allowed. */
export async function startIdentityApp(options: TestAppOptions = {}): Promise<TestApp> {
  return startTestApp({
    ...options,
    env: {
      BASTION_ADMIN_EMAIL: ADMIN.email,
      BASTION_ADMIN_PASSWORD: ADMIN.password,
      BASTION_OUTBOUND_ALLOW_PRIVATE: 'true',
      ...options.env,
    },
  });
}

/** Tokens from a completed login. */
export interface Tokens {
  access_token: string;
  refresh_token: string;
  expires_in: number;
  token_type: 'Bearer';
}

/** `{authorization: 'Bearer …'}`. */
export function bearer(token: string): { authorization: string } {
  return { authorization: `Bearer ${token}` };
}

/** Logs in (no MFA) and returns the tokens; fails the test on anything but 200 with tokens. */
export async function login(app: FastifyInstance, email: string, password: string): Promise<Tokens> {
  const response = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } });
  if (response.statusCode !== 200) throw new Error(`login ${email}: ${response.statusCode} ${response.body}`);
  const body = response.json() as Tokens & { mfa_required?: boolean };
  if (body.mfa_required) throw new Error(`login ${email}: MFA required`);
  return body;
}

/** Creates a user through the admin API and returns its id. */
export async function createUser(
  app: FastifyInstance,
  adminToken: string,
  email: string,
  password: string = STRONG_PASSWORD,
  extra: Record<string, unknown> = {},
): Promise<string> {
  const response = await app.inject({
    method: 'POST',
    url: '/api/v1/admin/users',
    headers: bearer(adminToken),
    payload: { email, password, ...extra },
  });
  if (response.statusCode !== 201)
    throw new Error(`create user ${email}: ${response.statusCode} ${response.body}`);
  return (response.json() as { id: string }).id;
}

/** Sends a JSON request with a token (access token or API key as bearer). */
export function call(
  app: FastifyInstance,
  token: string | null,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  url: string,
  payload?: unknown,
): Promise<LightMyRequestResponse> {
  return app.inject({
    method,
    url,
    headers: token ? bearer(token) : {},
    ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
  });
}
