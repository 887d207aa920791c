import { randomBytes } from 'node:crypto';
import { BastionError } from '../core/errors.ts';
import { sha256Hex } from '../core/hash.ts';
import type { Principal } from '../core/principal.ts';
import type { UsersTable } from '../storage/schema.ts';
import type { RequestContext } from './audit-log.ts';
import { IdentityErrors } from './errors.ts';
import type { IdentityParts } from './identity-parts.ts';
import type { Attempt } from './login-guard.ts';
import { hashPassword, needsRehash, verifyDummy, verifyPassword } from './passwords.ts';

/** Tokens handed to a client after a complete login or a refresh. */
export interface TokenPair {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  refresh_token: string;
}

/** The answer to a correct password when MFA is on. */
export interface MfaChallenge {
  mfa_required: true;
  mfa_token: string;
}

const MFA_MAX_ATTEMPTS = 5;
/** An IP the user logged in from within this many days is a known device (see LoginGuard). */
const KNOWN_IP_DAYS = 30;

/**
 * Getting in and out: login without enumeration (every failure the same answer after the same
 * work), the MFA step, refresh, logout, and the brute-force accounting every secret-checking step
 * shares (`beginAttempt`, `auditLock`).
 */
export class LoginFlow {
  readonly #d: IdentityParts;

  constructor(parts: IdentityParts) {
    this.#d = parts;
  }

  /**
   * Checks an e-mail and password. Every way to fail (unknown address, wrong password, locked or
   * disabled account) ends in the same 401 after the same work (one argon2 verification).
   */
  async login(email: unknown, password: unknown, context: RequestContext): Promise<TokenPair | MfaChallenge> {
    const address = typeof email === 'string' ? email : '';
    const secret = typeof password === 'string' ? password : '';
    const accountKey = this.#d.accountKey(address);
    const ip = context.ip ?? 'unknown';
    const user = await this.#d.users.findByEmail(address);
    const attempt = await this.beginAttempt(
      accountKey,
      ip,
      user?.id ?? null,
      address,
      'auth.login_throttled',
      context,
    );
    const matches = user ? await verifyPassword(user.password_hash, secret) : await verifyDummy(secret);
    const reason = !user
      ? 'unknown_user'
      : !matches
        ? 'wrong_password'
        : attempt.refused
          ? 'locked'
          : user.status !== 'active'
            ? 'disabled'
            : null;
    if (reason !== null || !user) {
      await this.#loginFailed(attempt, user?.id ?? null, reason ?? 'unknown_user', address, context);
      throw new BastionError(IdentityErrors.invalidCredentials);
    }
    if (needsRehash(user.password_hash)) {
      await this.#d.users.setPasswordHash(user.id, await hashPassword(secret), false);
    }
    if (user.mfa_enabled === 1) {
      const token = randomBytes(32).toString('base64url');
      await this.#d.state.set(
        `mfa-pending:${sha256Hex(token)}`,
        user.id,
        this.#d.config.identity.mfaTokenTtlSeconds * 1000,
      );
      await this.#d.audit.record({
        category: 'authentication',
        action: 'auth.password_verified',
        actor: { type: 'user', id: user.id },
        details: { mfa_required: true },
        context,
      });
      // The run of failures ends only once the second factor passes too: a password step between
      // guesses of the code must not reset the count.
      await this.#d.guard.stepPassed(attempt);
      return { mfa_required: true, mfa_token: token };
    }
    await this.#d.guard.succeeded(attempt);
    return this.#startSession(user, false, 'password', context);
  }

  /** Second step of an MFA login: a TOTP or backup code for the token from `login`. */
  async verifyMfa(mfaToken: unknown, code: unknown, context: RequestContext): Promise<TokenPair> {
    const invalid = () => new BastionError(IdentityErrors.invalidMfa);
    if (typeof mfaToken !== 'string' || mfaToken.length > 128 || typeof code !== 'string') throw invalid();
    const key = `mfa-pending:${sha256Hex(mfaToken)}`;
    const userId = await this.#d.state.get(key);
    if (!userId) throw invalid();
    const user = await this.#d.users.get(userId);
    if (user?.status !== 'active') throw invalid();
    const email = await this.#d.users.email(user);
    const accountKey = this.#d.accountKey(email);
    const ip = context.ip ?? 'unknown';
    const attempt = await this.beginAttempt(accountKey, ip, user.id, email, 'auth.mfa_throttled', context);
    // A locked account takes no code, not even on an mfa_token issued before the lock.
    const method = attempt.refused ? null : await this.#d.mfa.verify(user.id, code);
    if (!method) {
      const attempts = await this.#d.state.increment(
        `mfa-attempts:${sha256Hex(mfaToken)}`,
        this.#d.config.identity.mfaTokenTtlSeconds * 1000,
      );
      if (attempts.value >= MFA_MAX_ATTEMPTS) await this.#d.state.delete(key);
      const outcome = await this.#d.guard.failed(attempt);
      await this.#d.audit.record({
        category: 'authentication',
        action: 'auth.mfa_failed',
        outcome: 'failure',
        actor: { type: 'user', id: user.id },
        details: attempt.refused ? { reason: 'locked' } : {},
        context,
      });
      await this.auditLock(outcome.lockedForSeconds, user.id, email, context);
      throw invalid();
    }
    // The token is single-use: of two requests racing with valid codes, one wins.
    if ((await this.#d.state.consume(key)) === null) throw invalid();
    await this.#d.guard.succeeded(attempt);
    return this.#startSession(user, true, method, context);
  }

  /** Exchanges a refresh token for a new pair. */
  async refresh(refreshToken: unknown, context: RequestContext): Promise<TokenPair> {
    const result = await this.#d.sessions.refresh(refreshToken as string, context);
    const access = await this.#d.tokens.issue(result.userId, result.sessionId, result.endsAt);
    await this.#d.audit.record({
      category: 'authentication',
      action: 'auth.refresh',
      actor: { type: 'user', id: result.userId },
      target: { type: 'session', id: result.sessionId },
      context,
    });
    return {
      access_token: access.token,
      token_type: 'Bearer',
      expires_in: access.expiresIn,
      refresh_token: result.refreshToken,
    };
  }

  /** Ends the caller's session. */
  async logout(principal: Principal, context: RequestContext): Promise<void> {
    if (principal.sessionId) await this.#d.sessions.revoke(principal.sessionId, 'logout');
    await this.#d.audit.record({
      category: 'authentication',
      action: 'auth.logout',
      actor: { type: principal.kind, id: principal.id },
      target: { type: 'session', id: principal.sessionId ?? null },
      context,
    });
  }

  async #startSession(
    user: UsersTable,
    mfa: boolean,
    method: string,
    context: RequestContext,
  ): Promise<TokenPair> {
    const { sessionId, refreshToken, endsAt } = await this.#d.sessions.create(user.id, { mfa, context });
    const access = await this.#d.tokens.issue(user.id, sessionId, endsAt);
    await this.#d.users.touchLogin(user.id);
    await this.#d.audit.record({
      category: 'authentication',
      action: 'auth.login',
      actor: { type: 'user', id: user.id },
      target: { type: 'session', id: sessionId },
      details: { method, mfa },
      context,
    });
    return {
      access_token: access.token,
      token_type: 'Bearer',
      expires_in: access.expiresIn,
      refresh_token: refreshToken,
    };
  }

  /**
   * Counts an attempt at a secret before it is checked (see LoginGuard); a throttled attempt is
   * recorded as a security event and answered 429.
   */
  async beginAttempt(
    accountKey: string,
    ip: string,
    userId: string | null,
    email: string,
    throttledAction: string,
    context: RequestContext,
  ): Promise<Attempt> {
    // Looked up for unknown accounts too (with an id that matches nothing), so both cost the same.
    const knownIp = await this.#knownIp(userId ?? '-', ip);
    try {
      return await this.#d.guard.begin(accountKey, ip, { knownIp });
    } catch (error) {
      await this.#d.audit.record({
        category: 'security',
        action: throttledAction,
        outcome: 'failure',
        actor: userId ? { type: 'user', id: userId } : { type: 'anonymous', id: null },
        details: { email },
        context,
      });
      throw error;
    }
  }

  /** True when the user logged in successfully from this IP in the last 30 days (a known device). */
  async #knownIp(userId: string, ip: string): Promise<boolean> {
    const since = new Date(this.#d.clock.now() - KNOWN_IP_DAYS * 86_400_000).toISOString();
    const row = await this.#d.db
      .selectFrom('sessions')
      .select('id')
      .where('user_id', '=', userId)
      .where('ip', '=', ip)
      .where('created_at', '>', since)
      .limit(1)
      .executeTakeFirst();
    return row !== undefined;
  }

  async #loginFailed(
    attempt: Attempt,
    userId: string | null,
    reason: string,
    email: string,
    context: RequestContext,
  ): Promise<void> {
    const outcome = await this.#d.guard.failed(attempt);
    await this.#d.audit.record({
      category: 'authentication',
      action: 'auth.login_failed',
      outcome: 'failure',
      actor: userId ? { type: 'user', id: userId } : { type: 'anonymous', id: null },
      details: { reason, email },
      context,
    });
    await this.auditLock(outcome.lockedForSeconds, userId, email, context);
  }

  /** A lock is a security event, whichever step's failure (password, MFA code, re-auth) caused it. */
  async auditLock(
    lockedForSeconds: number | null,
    userId: string | null,
    email: string,
    context: RequestContext,
  ): Promise<void> {
    if (lockedForSeconds === null) return;
    await this.#d.audit.record({
      category: 'security',
      action: 'auth.account_locked',
      outcome: 'failure',
      actor: userId ? { type: 'user', id: userId } : { type: 'anonymous', id: null },
      details: { locked_for_seconds: lockedForSeconds, email },
      context,
    });
  }
}
