import { createHash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { BastionConfig } from '../config/schema.ts';
import type { Clock } from '../core/clock.ts';
import { BastionError } from '../core/errors.ts';
import type { Principal } from '../core/principal.ts';
import { BlindIndex, normalizers } from '../data-protection/blind-index.ts';
import type { FieldCipher } from '../data-protection/field-cipher.ts';
import { deriveKey } from '../data-protection/key-derivation.ts';
import type { Keyring } from '../data-protection/keyring.ts';
import type { DatabaseSchema, UsersTable } from '../storage/schema.ts';
import type { SharedState } from '../storage/state.ts';
import { type Listener, listen } from '../storage/subscription.ts';
import { AccessTokens } from './access-tokens.ts';
import { ApiKeyService } from './api-keys.ts';
import { AuditLog, type RequestContext } from './audit-log.ts';
import { IdentityErrors } from './errors.ts';
import { type Attempt, LoginGuard } from './login-guard.ts';
import { MembershipResolver } from './memberships.ts';
import { MfaService } from './mfa.ts';
import { hashPassword, needsRehash, verifyDummy, verifyPassword } from './passwords.ts';
import { PLATFORM_ADMIN_PERMISSIONS } from './permissions.ts';
import { SessionRevocations } from './revocations.ts';
import { SessionService } from './sessions.ts';
import { SigningKeys } from './signing-keys.ts';
import { checkNewPassword, EMAIL_INDEX_NAME, UserStore, type UserView } from './users.ts';

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

/** Options of {@link IdentityService.open}. */
export interface IdentityServiceOptions {
  config: BastionConfig;
  db: Kysely<DatabaseSchema>;
  state: SharedState;
  keyring: Keyring;
  cipher: FieldCipher;
  masterKey: Buffer;
  clock: Clock;
  logger: Logger;
}

const USER_CHANNEL = 'identity:user-changed';
const USER_CACHE_TTL_MS = 10_000;
const USER_CACHE_MAX = 50_000;
const MFA_MAX_ATTEMPTS = 5;
/** An IP the user logged in from within this many days is a known device (see LoginGuard). */
const KNOWN_IP_DAYS = 30;
const NO_PERMISSIONS: ReadonlySet<string> = new Set();

interface CachedUser {
  status: string;
  platformAdmin: boolean;
  at: number;
}

function sha256(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

/**
 * Identity: users and passwords, login without enumeration, MFA, sessions and tokens, API keys,
 * organization roles, and the audit trail of all of it. One instance per process; `close()`
 * stops its timers and subscriptions.
 */
export class IdentityService {
  readonly users: UserStore;
  readonly sessions: SessionService;
  readonly mfa: MfaService;
  readonly apiKeys: ApiKeyService;
  readonly memberships: MembershipResolver;
  readonly audit: AuditLog;
  readonly signingKeys: SigningKeys;
  readonly tokens: AccessTokens;
  readonly revocations: SessionRevocations;
  readonly guard: LoginGuard;
  readonly #options: IdentityServiceOptions;
  readonly #emailIndex: BlindIndex;
  readonly #userCache = new Map<string, CachedUser>();
  #listener: Listener | null = null;

  private constructor(options: IdentityServiceOptions, signingKeys: SigningKeys) {
    const { config, db, state, cipher, clock, logger, keyring, masterKey } = options;
    const identity = config.identity;
    this.#options = options;
    this.signingKeys = signingKeys;
    this.#emailIndex = new BlindIndex(keyring, EMAIL_INDEX_NAME, normalizers.email);
    this.audit = new AuditLog({
      db,
      clock,
      logger,
      masking: { fields: config.privacy.maskFields, emails: config.privacy.maskEmails },
    });
    this.users = new UserStore({ db, cipher, emailIndex: this.#emailIndex, clock });
    this.revocations = new SessionRevocations({
      state,
      clock,
      logger,
      accessTokenTtlMs: identity.accessTokenTtlSeconds * 1000,
      recheckMs: identity.revocationRecheckMs,
      policy: config.sharedStatePolicy.revocation,
    });
    this.sessions = new SessionService({
      db,
      clock,
      revocations: this.revocations,
      audit: this.audit,
      idleTimeoutMs: identity.sessionIdleTimeoutSeconds * 1000,
      absoluteTimeoutMs: identity.sessionAbsoluteTimeoutSeconds * 1000,
    });
    this.tokens = new AccessTokens({
      keys: signingKeys,
      clock,
      issuer: identity.issuer,
      audience: identity.audience,
      ttlSeconds: identity.accessTokenTtlSeconds,
      cacheSize: identity.tokenCacheSize,
    });
    this.mfa = new MfaService({
      db,
      cipher,
      clock,
      backupCodeKey: deriveKey(masterKey, 'bastion/mfa-backup-codes/v1'),
      issuer: 'Bastion',
    });
    this.apiKeys = new ApiKeyService({ db, clock, state });
    this.memberships = new MembershipResolver({ db, state, clock });
    this.guard = new LoginGuard({ state, config: identity.lockout, logger });
  }

  /** Loads signing keys and starts listening for revocations and changes from other instances. */
  static async open(options: IdentityServiceOptions): Promise<IdentityService> {
    const signingKeys = await SigningKeys.open({
      db: options.db,
      cipher: options.cipher,
      clock: options.clock,
      state: options.state,
      logger: options.logger,
      rotationDays: options.config.identity.signingKeyRotationDays,
      accessTokenTtlMs: options.config.identity.accessTokenTtlSeconds * 1000,
    });
    const service = new IdentityService(options, signingKeys);
    try {
      // Make the dummy hash now, so the first login of an unknown address costs no extra hash.
      await verifyDummy('');
      service.revocations.start();
      service.apiKeys.start();
      service.memberships.start();
      service.#listener = listen(options.state, USER_CHANNEL, (id) => service.#userCache.delete(id), {
        onRecovered: () => service.#userCache.clear(),
      });
    } catch (error) {
      await service.close();
      throw error;
    }
    return service;
  }

  async close(): Promise<void> {
    await Promise.allSettled([
      this.signingKeys.close(),
      this.revocations.close(),
      this.apiKeys.close(),
      this.memberships.close(),
      this.#listener?.close(),
    ]);
  }

  /** The blind-index key of an e-mail address: what lockouts are counted by. */
  accountKey(email: string): string {
    return this.#emailIndex.compute(typeof email === 'string' ? email.trim().slice(0, 320) : '');
  }

  /** Creates the platform admin from BASTION_ADMIN_EMAIL/PASSWORD when no user exists yet. */
  async bootstrapAdmin(): Promise<UserView | null> {
    const { email, password } = this.#options.config.admin;
    if (!email || !password || (await this.users.any())) return null;
    let user: UserView;
    try {
      user = await this.users.create({ email, password, name: 'Platform admin', platformAdmin: true });
    } catch (error) {
      // Another instance starting at the same moment made it.
      if (error instanceof BastionError && error.definition === IdentityErrors.emailTaken) return null;
      throw error;
    }
    await this.audit.record({
      category: 'change',
      action: 'user.create',
      actor: { type: 'system', id: null },
      target: { type: 'user', id: user.id },
      details: { platform_admin: true, source: 'environment' },
    });
    this.#options.logger.info({ event: 'admin_created', user_id: user.id }, 'platform admin created');
    return user;
  }

  /**
   * Checks an e-mail and password. Every way to fail (unknown address, wrong password, locked or
   * disabled account) ends in the same 401 after the same work (one argon2 verification).
   */
  async login(email: unknown, password: unknown, context: RequestContext): Promise<TokenPair | MfaChallenge> {
    const address = typeof email === 'string' ? email : '';
    const secret = typeof password === 'string' ? password : '';
    const accountKey = this.accountKey(address);
    const ip = context.ip ?? 'unknown';
    const user = await this.users.findByEmail(address);
    const attempt = await this.#begin(
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
      await this.users.setPasswordHash(user.id, await hashPassword(secret), false);
    }
    if (user.mfa_enabled === 1) {
      const token = randomBytes(32).toString('base64url');
      await this.#options.state.set(
        `mfa-pending:${sha256(token)}`,
        user.id,
        this.#options.config.identity.mfaTokenTtlSeconds * 1000,
      );
      await this.audit.record({
        category: 'authentication',
        action: 'auth.password_verified',
        actor: { type: 'user', id: user.id },
        details: { mfa_required: true },
        context,
      });
      // The run of failures ends only once the second factor passes too: a password step between
      // guesses of the code must not reset the count.
      return { mfa_required: true, mfa_token: token };
    }
    await this.guard.succeeded(attempt);
    return this.#startSession(user, false, 'password', context);
  }

  /** Second step of an MFA login: a TOTP or backup code for the token from `login`. */
  async verifyMfa(mfaToken: unknown, code: unknown, context: RequestContext): Promise<TokenPair> {
    const invalid = () => new BastionError(IdentityErrors.invalidMfa);
    if (typeof mfaToken !== 'string' || mfaToken.length > 128 || typeof code !== 'string') throw invalid();
    const key = `mfa-pending:${sha256(mfaToken)}`;
    const userId = await this.#options.state.get(key);
    if (!userId) throw invalid();
    const user = await this.users.get(userId);
    if (user?.status !== 'active') throw invalid();
    const email = await this.users.email(user);
    const accountKey = this.accountKey(email);
    const ip = context.ip ?? 'unknown';
    const attempt = await this.#begin(accountKey, ip, user.id, email, 'auth.mfa_throttled', context);
    // A locked account takes no code, not even on an mfa_token issued before the lock.
    const method = attempt.refused ? null : await this.mfa.verify(user.id, code);
    if (!method) {
      const attempts = await this.#options.state.increment(
        `mfa-attempts:${sha256(mfaToken)}`,
        this.#options.config.identity.mfaTokenTtlSeconds * 1000,
      );
      if (attempts.value >= MFA_MAX_ATTEMPTS) await this.#options.state.delete(key);
      const outcome = await this.guard.failed(attempt);
      await this.audit.record({
        category: 'authentication',
        action: 'auth.mfa_failed',
        outcome: 'failure',
        actor: { type: 'user', id: user.id },
        details: attempt.refused ? { reason: 'locked' } : {},
        context,
      });
      await this.#auditLock(outcome.lockedForSeconds, user.id, email, context);
      throw invalid();
    }
    // The token is single-use: of two requests racing with valid codes, one wins.
    if ((await this.#options.state.consume(key)) === null) throw invalid();
    await this.guard.succeeded(attempt);
    return this.#startSession(user, true, method, context);
  }

  /** Exchanges a refresh token for a new pair. */
  async refresh(refreshToken: unknown, context: RequestContext): Promise<TokenPair> {
    const result = await this.sessions.refresh(refreshToken as string, context);
    const access = await this.tokens.issue(result.userId, result.sessionId, result.endsAt);
    await this.audit.record({
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
    if (principal.sessionId) await this.sessions.revoke(principal.sessionId, 'logout');
    await this.audit.record({
      category: 'authentication',
      action: 'auth.logout',
      actor: { type: principal.kind, id: principal.id },
      target: { type: 'session', id: principal.sessionId ?? null },
      context,
    });
  }

  /**
   * Changes a password: the current password, and the MFA code when MFA is on, are required; the
   * other sessions end.
   */
  async changePassword(
    principal: Principal,
    input: { current_password: string; new_password: string; code?: string },
    context: RequestContext,
  ): Promise<void> {
    const user = await this.#reauthenticate(principal, input.current_password, input.code, context);
    const email = await this.users.email(user);
    await checkNewPassword(input.new_password, [email, user.name ?? '']);
    await this.users.setPasswordHash(user.id, await hashPassword(input.new_password), true);
    const ended = await this.sessions.revokeAllForUser(
      user.id,
      'password_change',
      principal.sessionId ?? null,
    );
    await this.audit.record({
      category: 'authentication',
      action: 'auth.password_changed',
      actor: { type: 'user', id: user.id },
      details: { other_sessions_revoked: ended },
      context,
    });
  }

  /**
   * Starts TOTP enrolment; needs the password, however fresh the login (a stolen access token must
   * not be able to put the thief's authenticator on the account).
   */
  async setupTotp(
    principal: Principal,
    input: { password?: string },
    context: RequestContext,
  ): Promise<{ secret: string; otpauth_url: string }> {
    const user = await this.#reauthenticate(principal, input.password, undefined, context);
    const email = await this.users.email(user);
    const { secret, otpauthUrl } = await this.mfa.setup(user.id, email);
    await this.audit.record({
      category: 'authentication',
      action: 'auth.mfa_setup_started',
      actor: { type: 'user', id: user.id },
      context,
    });
    return { secret, otpauth_url: otpauthUrl };
  }

  /** Confirms TOTP with a first code; returns the backup codes once; other sessions end. */
  async enableTotp(
    principal: Principal,
    code: string,
    context: RequestContext,
  ): Promise<{ backup_codes: string[] }> {
    // Enrolment was started after a re-authentication (setupTotp); the code proves the user holds
    // the authenticator.
    const user = await this.#ownUser(principal);
    const { backupCodes } = await this.mfa.enable(user.id, code).catch(async (error: unknown) => {
      await this.audit.record({
        category: 'authentication',
        action: 'auth.mfa_enable_failed',
        outcome: 'failure',
        actor: { type: 'user', id: user.id },
        context,
      });
      throw error;
    });
    const ended = await this.sessions.revokeAllForUser(user.id, 'mfa_change', principal.sessionId ?? null);
    this.#userChanged(user.id);
    await this.audit.record({
      category: 'authentication',
      action: 'auth.mfa_enabled',
      actor: { type: 'user', id: user.id },
      details: { other_sessions_revoked: ended },
      context,
    });
    return { backup_codes: backupCodes };
  }

  /** Turns MFA off: password and a current code required; other sessions end. */
  async disableMfa(
    principal: Principal,
    input: { password: string; code: string },
    context: RequestContext,
  ): Promise<void> {
    const user = await this.#reauthenticate(principal, input.password, input.code, context);
    if (user.mfa_enabled !== 1) throw new BastionError(IdentityErrors.mfaNotEnabled);
    await this.mfa.disable(user.id);
    const ended = await this.sessions.revokeAllForUser(user.id, 'mfa_change', principal.sessionId ?? null);
    await this.audit.record({
      category: 'authentication',
      action: 'auth.mfa_disabled',
      actor: { type: 'user', id: user.id },
      details: { other_sessions_revoked: ended },
      context,
    });
  }

  /** Replaces the backup codes: password and a current code required. */
  async regenerateBackupCodes(
    principal: Principal,
    input: { password: string; code: string },
    context: RequestContext,
  ): Promise<{ backup_codes: string[] }> {
    const user = await this.#reauthenticate(principal, input.password, input.code, context);
    if (user.mfa_enabled !== 1) throw new BastionError(IdentityErrors.mfaNotEnabled);
    const codes = await this.mfa.regenerateBackupCodes(user.id);
    // An MFA change: whoever else is signed in must prove the factors again.
    const ended = await this.sessions.revokeAllForUser(user.id, 'mfa_change', principal.sessionId ?? null);
    await this.audit.record({
      category: 'authentication',
      action: 'auth.mfa_backup_codes_regenerated',
      actor: { type: 'user', id: user.id },
      details: { other_sessions_revoked: ended },
      context,
    });
    return { backup_codes: codes };
  }

  /** Changes the e-mail address: password (and MFA code when on) required. */
  async changeEmail(
    principal: Principal,
    input: { new_email: string; password: string; code?: string },
    context: RequestContext,
  ): Promise<UserView> {
    const user = await this.#reauthenticate(principal, input.password, input.code, context);
    const view = await this.users.changeEmail(user.id, input.new_email);
    await this.audit.record({
      category: 'authentication',
      action: 'auth.email_changed',
      actor: { type: 'user', id: user.id },
      context,
    });
    return view;
  }

  /** The organizations a user belongs to, with the role in each. */
  async organizationsOf(userId: string): Promise<Array<{ id: string; name: string; role: string }>> {
    return this.#options.db
      .selectFrom('memberships')
      .innerJoin('organizations', 'organizations.id', 'memberships.org_id')
      .select(['organizations.id', 'organizations.name', 'memberships.role'])
      .where('memberships.user_id', '=', userId)
      .orderBy('organizations.id')
      .execute();
  }

  /** Disables or re-enables an account; disabling ends every session at once. */
  async setUserStatus(userId: string, status: 'active' | 'disabled'): Promise<void> {
    await this.users.update(userId, { status });
    this.#userChanged(userId);
    if (status === 'disabled') {
      await this.sessions.revokeAllForUser(userId, 'account_disabled');
      await this.apiKeys.revokeCreatedBy(userId);
    }
  }

  /** Tells every instance to forget what it cached about a user. */
  #userChanged(userId: string): void {
    this.#userCache.delete(userId);
    this.#options.state.publish(USER_CHANNEL, userId).catch(() => {});
  }

  /** Announce a change of a user's platform flag or status (admin routes). */
  userChanged(userId: string): void {
    this.#userChanged(userId);
  }

  /** The principal behind an access token or API key, or null. */
  async authenticate(
    credentials: { bearer: string | null; apiKey: string | null },
    context: () => RequestContext,
  ) {
    const apiKey = credentials.apiKey ?? (credentials.bearer?.startsWith('bst_') ? credentials.bearer : null);
    if (apiKey !== null) return this.#authenticateKey(apiKey, context);
    if (credentials.bearer === null) return null;
    const claims = await this.tokens.verify(credentials.bearer);
    if (!claims) return null;
    if (await this.revocations.isRevoked(claims.sid)) return null;
    const user = await this.#cachedUser(claims.sub);
    if (user?.status !== 'active') return null;
    const memberships = this.memberships;
    const principal: Principal = {
      kind: 'user',
      id: claims.sub,
      orgId: null,
      permissions: user.platformAdmin ? PLATFORM_ADMIN_PERMISSIONS : NO_PERMISSIONS,
      sessionId: claims.sid,
      userId: claims.sub,
      platformAdmin: user.platformAdmin,
      permissionsIn: (orgId) => memberships.permissionsOf(claims.sub, orgId, user.platformAdmin),
    };
    return principal;
  }

  async #authenticateKey(token: string, context: () => RequestContext): Promise<Principal | null> {
    const key = await this.apiKeys.authenticate(token);
    if (!key) return null;
    if (key.rejected) {
      // A known key id with a wrong secret, or a revoked or expired key: worth a security event
      // (at most one per key and minute, so a flood cannot turn into a flood of writes).
      if (key.firstInWindow) {
        await this.audit.record({
          category: 'security',
          action: 'auth.api_key_rejected',
          outcome: 'failure',
          orgId: key.orgId,
          actor: { type: 'anonymous', id: null },
          target: { type: 'api_key', id: key.id },
          details: { reason: key.reason },
          context: context(),
        });
      }
      return null;
    }
    if (key.firstUseInWindow) {
      await this.audit.record({
        category: 'authentication',
        action: 'auth.api_key_used',
        orgId: key.orgId,
        actor: { type: 'api_key', id: key.id },
        context: context(),
      });
    }
    return {
      kind: 'api_key',
      id: key.id,
      orgId: key.orgId,
      permissions: NO_PERMISSIONS,
      sessionId: null,
      userId: key.createdBy,
      platformAdmin: false,
      permissionsIn: async (orgId) => (orgId === key.orgId ? key.permissions : null),
    };
  }

  async #cachedUser(id: string): Promise<CachedUser | null> {
    const now = this.#options.clock.now();
    const cached = this.#userCache.get(id);
    if (cached && now - cached.at < USER_CACHE_TTL_MS) return cached;
    const row = await this.users.get(id);
    if (!row) return null;
    const entry = { status: row.status, platformAdmin: row.platform_admin === 1, at: now };
    if (this.#userCache.size >= USER_CACHE_MAX) this.#userCache.clear();
    this.#userCache.set(id, entry);
    return entry;
  }

  async #startSession(
    user: UsersTable,
    mfa: boolean,
    method: string,
    context: RequestContext,
  ): Promise<TokenPair> {
    const { sessionId, refreshToken, endsAt } = await this.sessions.create(user.id, { mfa, context });
    const access = await this.tokens.issue(user.id, sessionId, endsAt);
    await this.users.touchLogin(user.id);
    await this.audit.record({
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
  async #begin(
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
      return await this.guard.begin(accountKey, ip, { knownIp });
    } catch (error) {
      await this.audit.record({
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
    const since = new Date(this.#options.clock.now() - KNOWN_IP_DAYS * 86_400_000).toISOString();
    const row = await this.#options.db
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
    const outcome = await this.guard.failed(attempt);
    await this.audit.record({
      category: 'authentication',
      action: 'auth.login_failed',
      outcome: 'failure',
      actor: userId ? { type: 'user', id: userId } : { type: 'anonymous', id: null },
      details: { reason, email },
      context,
    });
    await this.#auditLock(outcome.lockedForSeconds, userId, email, context);
  }

  /** A lock is a security event, whichever step's failure (password, MFA code, re-auth) caused it. */
  async #auditLock(
    lockedForSeconds: number | null,
    userId: string | null,
    email: string,
    context: RequestContext,
  ): Promise<void> {
    if (lockedForSeconds === null) return;
    await this.audit.record({
      category: 'security',
      action: 'auth.account_locked',
      outcome: 'failure',
      actor: userId ? { type: 'user', id: userId } : { type: 'anonymous', id: null },
      details: { locked_for_seconds: lockedForSeconds, email },
      context,
    });
  }

  /** The caller's user row after checking the password (and MFA code when MFA is on). */
  async #reauthenticate(
    principal: Principal,
    password: unknown,
    code: unknown,
    context: RequestContext,
  ): Promise<UsersTable> {
    const user = await this.#ownUser(principal);
    // The same brute-force limits as login: a stolen access token must not become a way to guess
    // the password (or code) without limit.
    const email = await this.users.email(user);
    const accountKey = this.accountKey(email);
    const ip = context.ip ?? 'unknown';
    const attempt = await this.#begin(
      accountKey,
      ip,
      user.id,
      email,
      'auth.reauthentication_throttled',
      context,
    );
    const passwordOk =
      !attempt.refused &&
      typeof password === 'string' &&
      (await verifyPassword(user.password_hash, password));
    // The code is checked (and a valid one used up) only after the right password.
    const codeOk =
      passwordOk &&
      (user.mfa_enabled !== 1 ||
        (typeof code === 'string' && (await this.mfa.verify(user.id, code)) !== null));
    if (!passwordOk || !codeOk) {
      const outcome = await this.guard.failed(attempt);
      await this.audit.record({
        category: 'authentication',
        action: 'auth.reauthentication_failed',
        outcome: 'failure',
        actor: { type: 'user', id: user.id },
        context,
      });
      await this.#auditLock(outcome.lockedForSeconds, user.id, email, context);
      throw new BastionError(IdentityErrors.reauthenticationRequired);
    }
    await this.guard.succeeded(attempt);
    return user;
  }

  async #ownUser(principal: Principal): Promise<UsersTable> {
    if (principal.kind !== 'user') throw new BastionError(IdentityErrors.invalidToken);
    const user = await this.users.get(principal.id);
    if (!user) throw new BastionError(IdentityErrors.invalidToken);
    return user;
  }
}
