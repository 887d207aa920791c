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
import type { DatabaseSchema } from '../storage/schema.ts';
import type { SharedState } from '../storage/state.ts';
import { type Listener, listen } from '../storage/subscription.ts';
import { type AccessClaims, AccessTokens } from './access-tokens.ts';
import { AccountFlow } from './account-flow.ts';
import { ApiKeyService } from './api-keys.ts';
import { AuditLog, type RequestContext } from './audit-log.ts';
import { IdentityErrors } from './errors.ts';
import type { IdentityParts } from './identity-parts.ts';
import { LoginFlow, type MfaChallenge, type TokenPair } from './login-flow.ts';
import { LoginGuard } from './login-guard.ts';
import { MembershipResolver } from './memberships.ts';
import { MfaService } from './mfa.ts';
import { verifyDummy } from './passwords.ts';
import { PLATFORM_ADMIN_PERMISSIONS } from './permissions.ts';
import { SessionRevocations } from './revocations.ts';
import { SessionService } from './sessions.ts';
import { SigningKeys } from './signing-keys.ts';
import { EMAIL_INDEX_NAME, UserStore, type UserView } from './users.ts';

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
const NO_PERMISSIONS: ReadonlySet<string> = new Set();

interface CachedUser {
  status: string;
  platformAdmin: boolean;
  at: number;
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
  /** Login, MFA step, refresh, logout. */
  readonly flow: LoginFlow;
  /** Password, e-mail and MFA changes; disabling accounts. */
  readonly account: AccountFlow;
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
    const parts: IdentityParts = {
      config,
      db,
      state,
      clock,
      users: this.users,
      sessions: this.sessions,
      tokens: this.tokens,
      mfa: this.mfa,
      audit: this.audit,
      guard: this.guard,
      apiKeys: this.apiKeys,
      accountKey: (email) => this.accountKey(email),
      userChanged: (userId) => this.#userChanged(userId),
    };
    this.flow = new LoginFlow(parts);
    this.account = new AccountFlow({ ...parts, login: this.flow });
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

  /** See {@link LoginFlow.login}. */
  login(email: unknown, password: unknown, context: RequestContext): Promise<TokenPair | MfaChallenge> {
    return this.flow.login(email, password, context);
  }

  /** See {@link LoginFlow.verifyMfa}. */
  verifyMfa(mfaToken: unknown, code: unknown, context: RequestContext): Promise<TokenPair> {
    return this.flow.verifyMfa(mfaToken, code, context);
  }

  /** See {@link LoginFlow.refresh}. */
  refresh(refreshToken: unknown, context: RequestContext): Promise<TokenPair> {
    return this.flow.refresh(refreshToken, context);
  }

  /** See {@link LoginFlow.logout}. */
  logout(principal: Principal, context: RequestContext): Promise<void> {
    return this.flow.logout(principal, context);
  }

  /** See {@link AccountFlow.setUserStatus}. */
  setUserStatus(userId: string, status: 'active' | 'disabled'): Promise<void> {
    return this.account.setUserStatus(userId, status);
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

  /** Tells every instance to forget what it cached about a user. */
  #userChanged(userId: string): void {
    this.#userCache.delete(userId);
    this.#options.state.publish(USER_CHANNEL, userId).catch(() => {});
  }

  /** Announce a change of a user's platform flag or status (admin routes). */
  userChanged(userId: string): void {
    this.#userChanged(userId);
  }

  /**
   * The principal behind an access token or API key, or null. A token seen before, whose
   * session was confirmed live within the re-check interval and whose user is cached, is answered
   * at once from memory (the hot path); anything else is looked up.
   */
  authenticate(
    credentials: { bearer: string | null; apiKey: string | null },
    context: () => RequestContext,
  ): Principal | null | Promise<Principal | null> {
    const apiKey = credentials.apiKey ?? (credentials.bearer?.startsWith('bst_') ? credentials.bearer : null);
    if (apiKey !== null) return this.#authenticateKey(apiKey, context);
    if (credentials.bearer === null) return null;
    return this.#fromMemory(credentials.bearer) ?? this.#authenticateToken(credentials.bearer);
  }

  /** `authenticate` for an access token from caches only; undefined when something must be looked up. */
  #fromMemory(token: string): Principal | null | undefined {
    const claims = this.tokens.cached(token);
    if (claims === undefined) return undefined;
    if (claims === null) return null;
    const revoked = this.revocations.known(claims.sid);
    if (revoked === undefined) return undefined;
    if (revoked) return null;
    const user = this.#userFromMemory(claims.sub);
    if (user === undefined) return undefined;
    return user.status === 'active' ? this.#principalOf(claims, user) : null;
  }

  async #authenticateToken(token: string): Promise<Principal | null> {
    const claims = await this.tokens.verify(token);
    if (!claims) return null;
    if (await this.revocations.isRevoked(claims.sid)) return null;
    const user = await this.#cachedUser(claims.sub);
    if (user?.status !== 'active') return null;
    return this.#principalOf(claims, user);
  }

  #principalOf(claims: AccessClaims, user: CachedUser): Principal {
    const memberships = this.memberships;
    return {
      kind: 'user',
      id: claims.sub,
      orgId: null,
      permissions: user.platformAdmin ? PLATFORM_ADMIN_PERMISSIONS : NO_PERMISSIONS,
      sessionId: claims.sid,
      userId: claims.sub,
      platformAdmin: user.platformAdmin,
      permissionsIn: (orgId) => memberships.permissionsOf(claims.sub, orgId, user.platformAdmin),
    };
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

  #userFromMemory(id: string): CachedUser | undefined {
    const cached = this.#userCache.get(id);
    return cached && this.#options.clock.now() - cached.at < USER_CACHE_TTL_MS ? cached : undefined;
  }

  async #cachedUser(id: string): Promise<CachedUser | null> {
    const cached = this.#userFromMemory(id);
    if (cached) return cached;
    const now = this.#options.clock.now();
    const row = await this.users.get(id);
    if (!row) return null;
    const entry = { status: row.status, platformAdmin: row.platform_admin === 1, at: now };
    if (this.#userCache.size >= USER_CACHE_MAX) this.#userCache.clear();
    this.#userCache.set(id, entry);
    return entry;
  }
}
