import type { Logger } from 'pino';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import type { BastionConfig } from '../config/schema.ts';
import { BastionError } from '../core/errors.ts';
import { createRateLimiter, isRateLimited } from '../storage/rate-limiters.ts';
import type { SharedState } from '../storage/state.ts';
import { IdentityErrors } from './errors.ts';

type LockoutConfig = BastionConfig['identity']['lockout'];

/** What a failed attempt led to. */
export interface FailureOutcome {
  /** The account became locked by this failure, for this many seconds. */
  lockedForSeconds: number | null;
}

const LEVEL_MEMORY_MS = 24 * 3600_000;

/**
 * Brute-force defence for login and MFA steps:
 * - per client IP: at most `ipFailures` failures per window (rate-limiter-flexible); over it,
 *   every attempt from that IP gets 429 until the window ends;
 * - per account and IP: at most `accountIpFailures` per window, so one address cannot keep
 *   guessing one account;
 * - per account: after `maxFailures` consecutive failures the account is locked for `baseSeconds`,
 *   doubling with each further lock within a day, never longer than `maxSeconds`. A lock is
 *   always temporary and bounded, so it can delay but never shut out the owner for good. A locked
 *   account answers exactly like a wrong password.
 * Accounts are keyed by the e-mail's blind index, so unknown addresses behave exactly like
 * known ones. Counters live in shared state (Redis with several instances).
 */
export class LoginGuard {
  readonly #state: SharedState;
  readonly #config: LockoutConfig;
  readonly #logger: Logger;
  readonly #perIp: RateLimiterAbstract;
  readonly #perAccountIp: RateLimiterAbstract;

  constructor(options: { state: SharedState; config: LockoutConfig; logger: Logger }) {
    this.#state = options.state;
    this.#config = options.config;
    this.#logger = options.logger;
    this.#perIp = createRateLimiter(options.state, {
      name: 'login-ip',
      points: options.config.ipFailures,
      durationSeconds: options.config.ipWindowSeconds,
    });
    this.#perAccountIp = createRateLimiter(options.state, {
      name: 'login-account-ip',
      points: options.config.accountIpFailures,
      durationSeconds: options.config.accountIpWindowSeconds,
    });
  }

  /** Throws 429 with Retry-After when this IP, or this IP on this account, has failed too often. */
  async checkAllowed(accountKey: string, ip: string): Promise<void> {
    const [byIp, byAccountIp] = await Promise.all([
      this.#perIp.get(ip).catch(() => null),
      this.#perAccountIp.get(`${accountKey}|${ip}`).catch(() => null),
    ]);
    const blocked = [
      byIp && byIp.consumedPoints >= this.#config.ipFailures ? byIp : null,
      byAccountIp && byAccountIp.consumedPoints >= this.#config.accountIpFailures ? byAccountIp : null,
    ].filter((result) => result !== null);
    if (blocked.length === 0) return;
    const retryAfter = Math.max(
      1,
      Math.ceil(Math.max(...blocked.map((result) => result.msBeforeNext)) / 1000),
    );
    throw new BastionError(IdentityErrors.tooManyAttempts, {
      headers: { 'retry-after': String(retryAfter) },
    });
  }

  /** True while the account is locked. */
  async isLocked(accountKey: string): Promise<boolean> {
    try {
      return (await this.#state.get(`login-lock:${accountKey}`)) !== null;
    } catch (error) {
      this.#logger.warn({ err: error }, 'cannot read the account lock; treating the account as unlocked');
      return false;
    }
  }

  /** Counts a failure against the IP, the account on this IP and the account. */
  async recordFailure(accountKey: string, ip: string): Promise<FailureOutcome> {
    const consume = (limiter: RateLimiterAbstract, key: string) =>
      limiter.consume(key).catch((error: unknown) => {
        if (!isRateLimited(error)) this.#logger.warn({ err: error }, 'login rate limiter unavailable');
      });
    await Promise.all([consume(this.#perIp, ip), consume(this.#perAccountIp, `${accountKey}|${ip}`)]);
    try {
      const failures = await this.#state.increment(
        `login-fail:${accountKey}`,
        this.#config.failureWindowSeconds * 1000,
      );
      if (failures.value < this.#config.maxFailures) return { lockedForSeconds: null };
      const level = await this.#state.increment(`login-level:${accountKey}`, LEVEL_MEMORY_MS);
      const seconds = Math.min(this.#config.baseSeconds * 2 ** (level.value - 1), this.#config.maxSeconds);
      await this.#state.set(`login-lock:${accountKey}`, '1', seconds * 1000);
      await this.#state.delete(`login-fail:${accountKey}`);
      return { lockedForSeconds: seconds };
    } catch (error) {
      this.#logger.warn({ err: error }, 'cannot count a login failure in shared state');
      return { lockedForSeconds: null };
    }
  }

  /** A successful login clears the account's consecutive failures (not the lock escalation). */
  async recordSuccess(accountKey: string, ip: string): Promise<void> {
    await Promise.all([
      this.#state.delete(`login-fail:${accountKey}`).catch(() => false),
      this.#perAccountIp.delete(`${accountKey}|${ip}`).catch(() => false),
    ]);
  }
}
