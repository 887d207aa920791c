import type { Logger } from 'pino';
import type { BastionConfig } from '../config/schema.ts';
import type { Clock } from '../core/clock.ts';
import { sha256Hex } from '../core/hash.ts';
import { clientKey } from '../core/ip-address.ts';
import type { AuditEventInput } from '../identity/audit-log.ts';
import type { SharedState } from '../storage/state.ts';
import type { IpRules } from './ip-rules.ts';
import type { SecurityEvents } from './security-events.ts';

/** Why points are added to an address's threat score. */
export type ThreatSignal = 'attack' | 'identity_failure' | 'not_found' | 'rate_limited';

const FLUSH_INTERVAL_MS = 500;
const SCORE_TTL_MS = 24 * 3600_000;
const CAS_ATTEMPTS = 5;
/** Distinct accounts (from one address) or addresses (against one account) are counted in this window. */
const SPREAD_WINDOW_MS = 10 * 60_000;

interface StoredScore {
  score: number;
  at: number;
}

/**
 * A decaying threat score per client address (IPv4, or IPv6 /64) in shared state, so every
 * instance adds to the same score: attack findings, identity failures, 404 floods and rate-limit
 * hits add points; the score halves every `halfLifeSeconds`. Passing `banThreshold` bans the
 * address through an IP rule (every instance applies it within a second) for an escalating time
 * (15 min, 1 h, 24 h by default, for the 1st, 2nd and later bans within a week). Points are
 * gathered in memory and written every half second, so a flood is a few writes, not one per
 * request. Also spots credential stuffing (one address failing on many accounts) and distributed
 * guessing (many addresses failing on one account).
 */
export class ThreatScores {
  readonly #state: SharedState;
  readonly #ipRules: IpRules;
  readonly #events: SecurityEvents;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #settings: BastionConfig['protection']['threat'];
  readonly #pending = new Map<string, number>();
  #timer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> = Promise.resolve();

  constructor(options: {
    config: BastionConfig;
    state: SharedState;
    ipRules: IpRules;
    events: SecurityEvents;
    clock: Clock;
    logger: Logger;
  }) {
    this.#state = options.state;
    this.#ipRules = options.ipRules;
    this.#events = options.events;
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#settings = options.config.protection.threat;
  }

  /** Adds the points of a signal to an address's score (written within half a second). */
  add(ip: string, signal: ThreatSignal, points = this.#settings.points[signal]): void {
    if (!this.#settings.enabled || points <= 0) return;
    // An allow-listed address (a monitoring probe, an office) is never banned.
    if (this.#ipRules.decide(ip)?.action === 'allow') return;
    const key = clientKey(ip);
    this.#pending.set(key, (this.#pending.get(key) ?? 0) + points);
    if (this.#timer === null) {
      this.#timer = setTimeout(() => void this.flush(), FLUSH_INTERVAL_MS);
      this.#timer.unref();
    }
  }

  /**
   * A failed sign-in (password, MFA code, API key) from `ip` on `account` (an e-mail or id; only
   * its hash is kept): adds to the score, and reports credential stuffing or distributed guessing.
   */
  async identityFailure(ip: string, account: string | null): Promise<void> {
    this.add(ip, 'identity_failure');
    if (!this.#settings.enabled || account === null) return;
    const accountKey = sha256Hex(account.trim().toLowerCase()).slice(0, 32);
    const address = clientKey(ip);
    const { stuffingAccounts, guessingAddresses } = this.#settings;
    try {
      const [accounts, addresses] = await Promise.all([
        this.#countDistinct(`threat:stuffing:${address}`, accountKey),
        this.#countDistinct(`threat:guessing:${accountKey}`, address),
      ]);
      if (accounts === stuffingAccounts) {
        this.#events.record({
          kind: 'credential_stuffing',
          severity: 'high',
          clientIp: ip,
          blocked: false,
          details: { distinct_accounts: accounts, window_minutes: SPREAD_WINDOW_MS / 60_000 },
        });
        this.add(ip, 'attack', this.#settings.banThreshold);
      }
      if (addresses === guessingAddresses) {
        this.#events.record({
          kind: 'distributed_guessing',
          severity: 'high',
          clientIp: null,
          blocked: false,
          details: {
            account: accountKey,
            distinct_addresses: addresses,
            window_minutes: SPREAD_WINDOW_MS / 60_000,
          },
        });
      }
    } catch (error) {
      this.#logger.warn({ err: error }, 'could not update sign-in failure counts in shared state');
    }
  }

  /** How many distinct `member`s were seen under `set` in the window (this one included). */
  async #countDistinct(set: string, member: string): Promise<number> {
    const fresh = await this.#state.compareAndSet(`${set}:${member}`, null, '1', SPREAD_WINDOW_MS);
    if (!fresh) return -1;
    return (await this.#state.increment(`${set}:count`, SPREAD_WINDOW_MS)).value;
  }

  /** Writes the gathered points now (bans happen here). */
  flush(): Promise<void> {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    const batch = [...this.#pending];
    this.#pending.clear();
    this.#flushing = this.#flushing.then(async () => {
      for (const [key, points] of batch) {
        try {
          await this.#addStored(key, points);
        } catch (error) {
          this.#logger.warn({ err: error, client: key }, 'could not update a threat score in shared state');
        }
      }
    });
    return this.#flushing;
  }

  async close(): Promise<void> {
    await this.flush();
  }

  /** The current (decayed) score of an address. */
  async score(ip: string): Promise<number> {
    const raw = await this.#state.get(scoreKey(clientKey(ip)));
    return raw === null ? 0 : this.#decayed(JSON.parse(raw) as StoredScore);
  }

  #decayed(stored: StoredScore): number {
    const elapsed = Math.max(0, this.#clock.now() - stored.at) / 1000;
    return stored.score * 0.5 ** (elapsed / this.#settings.halfLifeSeconds);
  }

  // Read, decay, add, write back only if nobody changed it meanwhile: instances never lose each
  // other's points, and only the write that crosses the threshold (and resets the score) bans.
  async #addStored(key: string, points: number): Promise<void> {
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt += 1) {
      const raw = await this.#state.get(scoreKey(key));
      const current = raw === null ? 0 : this.#decayed(JSON.parse(raw) as StoredScore);
      const next = current + points;
      const banning = next >= this.#settings.banThreshold;
      const value = JSON.stringify({ score: banning ? 0 : next, at: this.#clock.now() });
      if (await this.#state.compareAndSet(scoreKey(key), raw, value, SCORE_TTL_MS)) {
        if (banning) await this.#ban(key, next);
        return;
      }
    }
  }

  async #ban(key: string, score: number): Promise<void> {
    const durations = this.#settings.banDurationsSeconds;
    const { value: count } = await this.#state.increment(`threat:bans:${key}`, 7 * 86_400_000);
    const seconds = durations[Math.min(count, durations.length) - 1] ?? 900;
    const rule = await this.#ipRules.add({
      cidr: key,
      action: 'deny',
      reason: `automatic ban ${count} (threat score ${Math.round(score)})`,
      source: 'ban',
      durationSeconds: seconds,
      createdBy: null,
    });
    this.#events.record({
      kind: 'ip_banned',
      severity: count >= durations.length ? 'critical' : 'high',
      clientIp: key,
      blocked: true,
      details: { ban: count, duration_seconds: seconds, score: Math.round(score), rule_id: rule.id },
    });
    this.#logger.warn(
      { event: 'ip_banned', client: key, ban: count, duration_seconds: seconds },
      'address banned',
    );
  }
}

function scoreKey(key: string): string {
  return `threat:score:${key}`;
}

// Failed sign-ins and token misuse, as recorded by identity's audit log.
const IDENTITY_FAILURES = new Set([
  'auth.login_failed',
  'auth.mfa_failed',
  'auth.reauthentication_failed',
  'auth.mfa_enable_failed',
  'auth.api_key_rejected',
  'auth.refresh_token_reused',
]);

/** Feeds identity's failure events (from `AuditLog.onRecorded`) into the threat scores. */
export function feedIdentityFailures(threat: ThreatScores): (event: AuditEventInput) => void {
  return (event) => {
    const ip = event.context?.ip;
    if (!ip || !IDENTITY_FAILURES.has(event.action)) return;
    const email = event.details?.email;
    const account = typeof email === 'string' ? email : (event.target?.id ?? event.actor.id ?? null);
    void threat.identityFailure(ip, account);
  };
}
