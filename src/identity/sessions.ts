import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Clock } from '../core/clock.ts';
import { BastionError } from '../core/errors.ts';
import { sha256Hex } from '../core/hash.ts';
import { newId } from '../core/ids.ts';
import type { DatabaseSchema, SessionsTable } from '../storage/schema.ts';
import type { AuditLog, RequestContext } from './audit-log.ts';
import { IdentityErrors } from './errors.ts';
import type { SessionRevocations } from './revocations.ts';

const REFRESH_TOKEN_BYTES = 32;
const REFRESH_TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** Why a session ended (stored with it and shown in lists). */
export type RevokeReason =
  | 'logout'
  | 'user'
  | 'admin'
  | 'password_change'
  | 'mfa_change'
  | 'account_disabled'
  | 'refresh_token_reuse'
  | 'user_deleted';

/** A session as the API shows it. */
export interface SessionView {
  id: string;
  created_at: string;
  last_seen_at: string;
  expires_at: string;
  ip: string | null;
  user_agent: string | null;
  mfa: boolean;
  current?: boolean;
}

/** Options of {@link SessionService}. */
export interface SessionServiceOptions {
  db: Kysely<DatabaseSchema>;
  clock: Clock;
  revocations: SessionRevocations;
  audit: AuditLog;
  idleTimeoutMs: number;
  absoluteTimeoutMs: number;
}

function newRefreshToken(): string {
  return randomBytes(REFRESH_TOKEN_BYTES).toString('base64url');
}

function view(row: SessionsTable): SessionView {
  return {
    id: row.id,
    created_at: row.created_at,
    last_seen_at: row.last_seen_at,
    expires_at: row.expires_at,
    ip: row.ip,
    user_agent: row.user_agent,
    mfa: row.mfa === 1,
  };
}

/**
 * Login sessions, each a refresh-token family. Refresh tokens are 256 random bits, stored as
 * SHA-256 hashes, single-use and rotated on every refresh; presenting a used one again means it
 * was stolen (or the client is broken), so the whole family is revoked and a security event is
 * recorded. Sessions end after an idle period without refresh, at an absolute lifetime, or when
 * revoked; a revoked session's access tokens stop working at once (see SessionRevocations).
 */
export class SessionService {
  readonly #options: SessionServiceOptions;

  constructor(options: SessionServiceOptions) {
    this.#options = options;
  }

  /** Starts a session; returns it with its first refresh token. */
  async create(
    userId: string,
    options: { mfa: boolean; context: RequestContext },
  ): Promise<{ sessionId: string; refreshToken: string; endsAt: number }> {
    const { db, clock, absoluteTimeoutMs } = this.#options;
    const now = clock.now();
    const at = new Date(now).toISOString();
    const sessionId = newId(now);
    const refreshToken = newRefreshToken();
    await db.transaction().execute(async (trx) => {
      await trx
        .insertInto('sessions')
        .values({
          id: sessionId,
          user_id: userId,
          created_at: at,
          last_seen_at: at,
          expires_at: new Date(now + absoluteTimeoutMs).toISOString(),
          revoked_at: null,
          revoked_reason: null,
          mfa: options.mfa ? 1 : 0,
          ip: options.context.ip,
          user_agent: options.context.userAgent,
        })
        .execute();
      await trx
        .insertInto('refresh_tokens')
        .values({ token_hash: sha256Hex(refreshToken), session_id: sessionId, created_at: at, used_at: null })
        .execute();
    });
    return { sessionId, refreshToken, endsAt: this.#endsAt(now, now + absoluteTimeoutMs) };
  }

  /** When a session seen at `lastSeen` must end: at its absolute end, or after the idle timeout. */
  #endsAt(lastSeen: number, expiresAt: number): number {
    return Math.min(expiresAt, lastSeen + this.#options.idleTimeoutMs);
  }

  /**
   * Exchanges a refresh token for a new one. Throws invalidRefreshToken (401) when the token is
   * unknown, used, or its session ended; a used token also revokes its whole family.
   */
  async refresh(
    refreshToken: string,
    context: RequestContext,
  ): Promise<{ sessionId: string; userId: string; refreshToken: string; endsAt: number }> {
    const { db, clock, idleTimeoutMs } = this.#options;
    const invalid = () => new BastionError(IdentityErrors.invalidRefreshToken);
    if (typeof refreshToken !== 'string' || !REFRESH_TOKEN_PATTERN.test(refreshToken)) throw invalid();
    const now = clock.now();
    const at = new Date(now).toISOString();
    const tokenHash = sha256Hex(refreshToken);
    const next = newRefreshToken();

    const outcome = await db.transaction().execute(async (trx) => {
      // Single use: of any number of concurrent exchanges, exactly one updates the row.
      const claimed = await trx
        .updateTable('refresh_tokens')
        .set({ used_at: at })
        .where('token_hash', '=', tokenHash)
        .where('used_at', 'is', null)
        .returning('session_id')
        .executeTakeFirst();
      if (!claimed) {
        const known = await trx
          .selectFrom('refresh_tokens')
          .select('session_id')
          .where('token_hash', '=', tokenHash)
          .executeTakeFirst();
        return known
          ? ({ kind: 'reused', sessionId: known.session_id } as const)
          : ({ kind: 'unknown' } as const);
      }
      const session = await trx
        .selectFrom('sessions')
        .innerJoin('users', 'users.id', 'sessions.user_id')
        .select(['sessions.id', 'sessions.user_id', 'sessions.revoked_at', 'sessions.expires_at'])
        .select(['sessions.last_seen_at', 'users.status'])
        .where('sessions.id', '=', claimed.session_id)
        .executeTakeFirst();
      if (
        !session ||
        session.revoked_at !== null ||
        session.status !== 'active' ||
        Date.parse(session.expires_at) <= now ||
        Date.parse(session.last_seen_at) + idleTimeoutMs <= now
      ) {
        return { kind: 'ended' } as const;
      }
      await trx.updateTable('sessions').set({ last_seen_at: at }).where('id', '=', session.id).execute();
      await trx
        .insertInto('refresh_tokens')
        .values({ token_hash: sha256Hex(next), session_id: session.id, created_at: at, used_at: null })
        .execute();
      return {
        kind: 'ok',
        sessionId: session.id,
        userId: session.user_id,
        endsAt: this.#endsAt(now, Date.parse(session.expires_at)),
      } as const;
    });

    if (outcome.kind === 'ok') {
      return {
        sessionId: outcome.sessionId,
        userId: outcome.userId,
        refreshToken: next,
        endsAt: outcome.endsAt,
      };
    }
    if (outcome.kind === 'reused') {
      const owner = await this.revoke(outcome.sessionId, 'refresh_token_reuse');
      await this.#options.audit.record({
        category: 'security',
        action: 'auth.refresh_token_reused',
        outcome: 'failure',
        actor: { type: owner ? 'user' : 'anonymous', id: owner },
        target: { type: 'session', id: outcome.sessionId },
        details: { revoked: 'session family' },
        context,
      });
    }
    throw invalid();
  }

  /** Ends a session and its family; returns its user id (null when unknown). Idempotent. */
  async revoke(sessionId: string, reason: RevokeReason): Promise<string | null> {
    const { db, clock, revocations } = this.#options;
    const row = await db
      .selectFrom('sessions')
      .select(['user_id'])
      .where('id', '=', sessionId)
      .executeTakeFirst();
    if (!row) return null;
    await db
      .updateTable('sessions')
      .set({ revoked_at: new Date(clock.now()).toISOString(), revoked_reason: reason })
      .where('id', '=', sessionId)
      .where('revoked_at', 'is', null)
      .execute();
    await revocations.revoke(sessionId);
    return row.user_id;
  }

  /** Ends every live session of a user, except `keep` (the caller's own, on password change). */
  async revokeAllForUser(userId: string, reason: RevokeReason, keep: string | null = null): Promise<number> {
    const live = await this.#liveQuery(userId).select('id').execute();
    const ids = live.map((row) => row.id).filter((id) => id !== keep);
    for (const id of ids) await this.revoke(id, reason);
    return ids.length;
  }

  /** A user's live sessions, newest first. */
  async list(userId: string): Promise<SessionView[]> {
    const rows = await this.#liveQuery(userId).selectAll().orderBy('id', 'desc').execute();
    return rows.map(view);
  }

  /** The session when it belongs to `userId` and is live, else null. */
  async find(userId: string, sessionId: string): Promise<SessionView | null> {
    const row = await this.#liveQuery(userId).selectAll().where('id', '=', sessionId).executeTakeFirst();
    return row ? view(row) : null;
  }

  #liveQuery(userId: string) {
    const { db, clock, idleTimeoutMs } = this.#options;
    const now = clock.now();
    return db
      .selectFrom('sessions')
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', new Date(now).toISOString())
      .where('last_seen_at', '>', new Date(now - idleTimeoutMs).toISOString());
  }
}
