import type { Logger } from 'pino';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import type { BastionConfig } from '../config/schema.ts';
import { BastionError } from '../core/errors.ts';
import { createRateLimiter, isRateLimited } from '../storage/rate-limiters.ts';
import type { SharedState } from '../storage/state.ts';
import { IdentityErrors } from './errors.ts';

type LockoutConfig = BastionConfig['identity']['lockout'];

/** One attempt at a secret (password, MFA code, re-authentication), counted before it is checked. */
export interface Attempt {
  readonly accountKey: string;
  readonly ip: string;
  /** Refuse whatever the secret: the account is locked, or this attempt is past the failure budget. */
  readonly refused: boolean;
  /** Counted against the account's consecutive failures (not from a known IP, not while locked). */
  readonly counted: boolean;
  /** This attempt's place in the account's run of consecutive attempts (when counted). */
  readonly number: number;
}

/** What a failed attempt led to. */
export interface FailureOutcome {
  /** The account became locked by this failure, for this many seconds. */
  lockedForSeconds: number | null;
}

const LEVEL_MEMORY_MS = 24 * 3600_000;

/**
 * Brute-force defence for login, MFA and re-authentication. Every attempt is counted *before* the
 * secret is checked, so a burst of parallel guesses is limited like a sequence of them:
 * - per client IP: `ipFailures` attempts per window, and per account and IP `accountIpFailures`
 *   (rate-limiter-flexible, memory or Redis); a successful attempt gives its point back. Over
 *   either, 429 with Retry-After.
 * - per account: after `maxFailures` consecutive failures the account is locked for
 *   `baseSeconds`, doubling with each further lock within a day, never longer than `maxSeconds`.
 *   While locked, attempts are refused and not counted, so a lock is never extended by the
 *   attacker's own guesses. The lock does not apply to an IP the owner logged in from
 *   successfully in the last 30 days (a known device; the per-account-and-IP limit still does):
 *   an attacker elsewhere can delay, but never shut out, the owner.
 * A refused attempt answers exactly like a wrong password. Accounts are keyed by the e-mail's blind
 * index, so unknown addresses behave exactly like known ones.
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

  /**
   * Counts an attempt before its secret is checked. Throws 429 (with Retry-After) when the IP, or
   * the account on this IP, has no attempts left.
   */
  async begin(accountKey: string, ip: string, options: { knownIp: boolean }): Promise<Attempt> {
    await this.#take(this.#perIp, ip);
    try {
      await this.#take(this.#perAccountIp, `${accountKey}|${ip}`);
    } catch (error) {
      await this.#perIp.reward(ip, 1).catch(() => {});
      throw error;
    }
    if (options.knownIp) return { accountKey, ip, refused: false, counted: false, number: 0 };
    if (await this.isLocked(accountKey)) return { accountKey, ip, refused: true, counted: false, number: 0 };
    try {
      const run = await this.#state.increment(
        `login-run:${accountKey}`,
        this.#config.failureWindowSeconds * 1000,
      );
      return {
        accountKey,
        ip,
        refused: run.value > this.#config.maxFailures,
        counted: true,
        number: run.value,
      };
    } catch (error) {
      this.#logger.warn({ err: error }, 'cannot count a login attempt in shared state');
      return { accountKey, ip, refused: false, counted: false, number: 0 };
    }
  }

  /**
   * A first step passed (the password, when an MFA code must follow): its IP points go back, so a
   * busy office's MFA logins do not use up its address's budget, but the account's run goes on
   * until the second factor passes too.
   */
  async stepPassed(attempt: Attempt): Promise<void> {
    await Promise.all([
      this.#perIp.reward(attempt.ip, 1).catch(() => {}),
      this.#perAccountIp.reward(`${attempt.accountKey}|${attempt.ip}`, 1).catch(() => {}),
    ]);
  }

  /** The attempt succeeded: its points go back, and the account's run of failures ends. */
  async succeeded(attempt: Attempt): Promise<void> {
    await Promise.all([
      this.#perIp.reward(attempt.ip, 1).catch(() => {}),
      this.#perAccountIp.delete(`${attempt.accountKey}|${attempt.ip}`).catch(() => false),
      attempt.counted ? this.#state.delete(`login-run:${attempt.accountKey}`).catch(() => false) : false,
    ]);
  }

  /**
   * The attempt failed. A failure at or past `maxFailures` in the run locks the account and starts
   * a new run; of concurrent ones, exactly one sets the lock (compare-and-set).
   */
  async failed(attempt: Attempt): Promise<FailureOutcome> {
    if (!attempt.counted || attempt.number < this.#config.maxFailures) return { lockedForSeconds: null };
    const { accountKey } = attempt;
    try {
      const level = Number((await this.#state.get(`login-level:${accountKey}`)) ?? 0) + 1;
      const seconds = Math.min(this.#config.baseSeconds * 2 ** (level - 1), this.#config.maxSeconds);
      const locked = await this.#state.compareAndSet(`login-lock:${accountKey}`, null, '1', seconds * 1000);
      if (!locked) return { lockedForSeconds: null };
      await this.#state.increment(`login-level:${accountKey}`, LEVEL_MEMORY_MS);
      await this.#state.delete(`login-run:${accountKey}`);
      return { lockedForSeconds: seconds };
    } catch (error) {
      this.#logger.warn({ err: error }, 'cannot lock an account in shared state');
      return { lockedForSeconds: null };
    }
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

  async #take(limiter: RateLimiterAbstract, key: string): Promise<void> {
    try {
      await limiter.consume(key);
    } catch (error) {
      if (!isRateLimited(error)) {
        this.#logger.warn({ err: error }, 'login rate limiter unavailable');
        return;
      }
      const retryAfter = Math.max(1, Math.ceil(error.msBeforeNext / 1000));
      throw new BastionError(IdentityErrors.tooManyAttempts, {
        headers: { 'retry-after': String(retryAfter) },
      });
    }
  }
}
