import type { Logger } from 'pino';
import type { Clock } from '../core/clock.ts';
import { BastionError } from '../core/errors.ts';
import type { SharedState } from '../storage/state.ts';
import { type Listener, listen } from '../storage/subscription.ts';
import { IdentityErrors } from './errors.ts';

/** Every instance hears of a revoked session on this channel. */
export const SESSION_REVOKED_CHANNEL = 'identity:session-revoked';
const KEY_PREFIX = 'revoked-session:';
const CHECKED_MAX = 100_000;

/** Options of {@link SessionRevocations}. */
export interface SessionRevocationsOptions {
  state: SharedState;
  clock: Clock;
  logger: Logger;
  /** How long a revocation must be remembered: the longest an access token lives. */
  accessTokenTtlMs: number;
  /** How long a session found live is trusted before shared state is asked again. */
  recheckMs: number;
  /** When shared state cannot be asked: refuse the request (fail-closed, 503) or let it through. */
  policy: 'fail-open' | 'fail-closed';
}

/**
 * Which sessions were revoked, answered from memory on the hot path. A revocation is written to
 * shared state (for instances that look later) and published (so every running instance knows
 * at once). A session not seen revoked is re-checked in shared state at most every `recheckMs`,
 * which also bounds the damage of a missed pub/sub message.
 */
export class SessionRevocations {
  readonly #options: SessionRevocationsOptions;
  /** Revoked session id → when the memory of it may be dropped. */
  readonly #revoked = new Map<string, number>();
  /** Live session id → when it was last confirmed live in shared state. */
  readonly #checked = new Map<string, number>();
  #listener: Listener | null = null;

  constructor(options: SessionRevocationsOptions) {
    this.#options = options;
  }

  /**
   * Starts listening for revocations from other instances. While the subscription is down,
   * sessions are re-checked in shared state every `recheckMs` as always; once it is back, every
   * session is re-checked at its next use, since revocations may have been missed meanwhile.
   */
  start(): void {
    this.#listener = listen(
      this.#options.state,
      SESSION_REVOKED_CHANNEL,
      (sessionId) => this.#remember(sessionId),
      { onRecovered: () => this.#checked.clear() },
    );
  }

  async close(): Promise<void> {
    await this.#listener?.close();
  }

  /** Marks a session revoked everywhere; its access tokens stop working on every instance. */
  async revoke(sessionId: string): Promise<void> {
    this.#remember(sessionId);
    const { state, accessTokenTtlMs, logger } = this.#options;
    try {
      await state.set(KEY_PREFIX + sessionId, '1', accessTokenTtlMs + 60_000);
      await state.publish(SESSION_REVOKED_CHANNEL, sessionId);
    } catch (error) {
      // The database row is already revoked (refresh is refused); other instances learn of it at
      // their next re-check once shared state is back.
      logger.error({ err: error, session_id: sessionId }, 'could not broadcast a session revocation');
    }
  }

  /**
   * From memory alone: true for a session known revoked, false for one confirmed live within
   * `recheckMs`, undefined when shared state must be asked (then call `isRevoked`).
   */
  known(sessionId: string): boolean | undefined {
    const now = this.#options.clock.now();
    const revokedUntil = this.#revoked.get(sessionId);
    if (revokedUntil !== undefined) {
      if (revokedUntil > now) return true;
      this.#revoked.delete(sessionId);
    }
    const checkedAt = this.#checked.get(sessionId);
    if (checkedAt !== undefined && now - checkedAt < this.#options.recheckMs) return false;
    return undefined;
  }

  /** True when the session was revoked. Throws 503 under the fail-closed policy if state is down. */
  async isRevoked(sessionId: string): Promise<boolean> {
    const known = this.known(sessionId);
    if (known !== undefined) return known;
    const now = this.#options.clock.now();
    let value: string | null;
    try {
      value = await this.#options.state.get(KEY_PREFIX + sessionId);
    } catch (error) {
      this.#options.logger.warn({ err: error }, 'cannot check session revocation in shared state');
      if (this.#options.policy === 'fail-open') return false;
      throw new BastionError(IdentityErrors.tokenServiceUnavailable, { headers: { 'retry-after': '5' } });
    }
    if (value !== null) {
      this.#remember(sessionId);
      return true;
    }
    if (this.#checked.size >= CHECKED_MAX) this.#checked.clear();
    this.#checked.set(sessionId, now);
    return false;
  }

  #remember(sessionId: string): void {
    const now = this.#options.clock.now();
    this.#checked.delete(sessionId);
    if (this.#revoked.size >= CHECKED_MAX) {
      for (const [id, until] of this.#revoked) if (until <= now) this.#revoked.delete(id);
    }
    this.#revoked.set(sessionId, now + this.#options.accessTokenTtlMs + 60_000);
  }
}
