import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { BastionConfig } from '../config/schema.ts';
import type { Clock } from '../core/clock.ts';
import { newId } from '../core/ids.ts';
import { formatRange, parseCidr } from '../core/ip-address.ts';
import type { DatabaseSchema } from '../storage/schema.ts';
import type { SharedState } from '../storage/state.ts';
import { type Listener, listen } from '../storage/subscription.ts';
import { type IpAction, type IpDecision, type IpRule, IpRuleSet } from './ip-rule-set.ts';

/** Channel on which instances announce a change of the rules. */
const RULES_CHANNEL = 'ip-rules';
/** Rules are read again this often even without an announcement (pub/sub down, expiries). */
const RELOAD_INTERVAL_MS = 5000;

/** A rule as the API shows it. */
export interface IpRuleView {
  id: string;
  cidr: string;
  action: IpAction;
  reason: string;
  source: IpRule['source'];
  created_by: string | null;
  created_at: string | null;
  expires_at: string | null;
}

/** Options of {@link IpRules}. */
export interface IpRulesOptions {
  config: BastionConfig;
  db: Kysely<DatabaseSchema>;
  state: SharedState;
  clock: Clock;
  logger: Logger;
}

/** Why a rule cannot be made, or null. */
export function cidrProblem(text: string): string | null {
  return parseCidr(text) === null
    ? `"${text}" is not an IP address or CIDR (e.g. 203.0.113.7, 10.0.0.0/8, 2001:db8::/32)`
    : null;
}

/**
 * The allow and deny rules of every instance: the config file's, the API's and automatic bans,
 * held in memory as an {@link IpRuleSet} (checked per request without I/O). A change is written
 * to the database, then announced over shared state's pub/sub, and every instance reads the
 * rules again at once; they are also re-read every few seconds, in case an announcement is lost.
 */
export class IpRules {
  readonly #options: IpRulesOptions;
  readonly #configRules: IpRule[];
  #set: IpRuleSet;
  #rows: IpRule[] = [];
  #listener: Listener | null = null;
  #timer: NodeJS.Timeout | null = null;
  #loading: Promise<void> | null = null;
  readonly #addedListeners: Array<(rule: IpRuleView) => void> = [];

  constructor(options: IpRulesOptions) {
    this.#options = options;
    const { allow, deny } = options.config.protection.ipRules;
    this.#configRules = [
      ...allow.map((entry, index) => configRule(entry, 'allow', index)),
      ...deny.map((entry, index) => configRule(entry, 'deny', index)),
    ];
    this.#set = new IpRuleSet(this.#configRules);
  }

  /** Reads the rules and starts following changes. */
  async start(): Promise<void> {
    await this.reload();
    this.#listener = listen(this.#options.state, RULES_CHANNEL, () => void this.reload(), {
      onRecovered: () => void this.reload(),
    });
    this.#timer = setInterval(() => void this.reload(), RELOAD_INTERVAL_MS);
    this.#timer.unref();
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.#listener?.close();
  }

  /** The decision for a client address (allow wins), or null when no live rule covers it. */
  decide(ip: string): IpDecision | null {
    return this.#set.decide(ip, this.#options.clock.now());
  }

  /** Reads the database's rules again (one read at a time; a call during a read waits for it). */
  reload(): Promise<void> {
    this.#loading ??= this.#load().finally(() => {
      this.#loading = null;
    });
    return this.#loading;
  }

  async #load(): Promise<void> {
    const now = new Date(this.#options.clock.now()).toISOString();
    try {
      const rows = await this.#options.db
        .selectFrom('ip_rules')
        .selectAll()
        .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
        .execute();
      this.#rows = rows.flatMap((row) => {
        const range = parseCidr(row.cidr);
        if (!range) return [];
        return [
          {
            id: row.id,
            cidr: row.cidr,
            range,
            action: row.action === 'allow' ? 'allow' : 'deny',
            reason: row.reason,
            source: row.source === 'ban' ? 'ban' : 'api',
            expiresAt: row.expires_at === null ? null : Date.parse(row.expires_at),
            createdBy: row.created_by,
            createdAt: row.created_at,
          } satisfies IpRule & { createdBy: string | null; createdAt: string },
        ];
      });
      this.#set = new IpRuleSet([...this.#configRules, ...this.#rows]);
    } catch (error) {
      // The rules in memory stay in force; the next reload tries again.
      this.#options.logger.error({ err: error }, 'could not read the IP rules');
    }
  }

  /**
   * Adds a rule for an address or CIDR (`durationSeconds` makes it temporary) and makes every
   * instance apply it. Throws a TypeError for text that is not an address or CIDR.
   */
  async add(input: {
    cidr: string;
    action: IpAction;
    reason: string;
    source: 'api' | 'ban';
    durationSeconds?: number | null;
    createdBy: string | null;
  }): Promise<IpRuleView> {
    const range = parseCidr(input.cidr);
    if (!range) throw new TypeError(cidrProblem(input.cidr) ?? 'bad CIDR');
    const now = this.#options.clock.now();
    const row = {
      id: newId(now),
      cidr: formatRange(range),
      action: input.action,
      reason: input.reason,
      source: input.source,
      created_by: input.createdBy,
      created_at: new Date(now).toISOString(),
      expires_at: input.durationSeconds ? new Date(now + input.durationSeconds * 1000).toISOString() : null,
    };
    await this.#options.db.insertInto('ip_rules').values(row).execute();
    await this.#changed();
    const view: IpRuleView = { ...row, action: input.action, source: input.source };
    for (const listener of this.#addedListeners) {
      try {
        listener(view);
      } catch (error) {
        this.#options.logger.warn({ err: error }, 'an IP rule listener failed');
      }
    }
    return view;
  }

  /** Calls `listener` after each rule this instance adds (bans and `block-ip`; live events). */
  onAdded(listener: (rule: IpRuleView) => void): void {
    this.#addedListeners.push(listener);
  }

  /** Removes the API's rules and bans for exactly this address or CIDR; the number removed. */
  async remove(cidr: string, action?: IpAction): Promise<number> {
    const range = parseCidr(cidr);
    if (!range) throw new TypeError(cidrProblem(cidr) ?? 'bad CIDR');
    let query = this.#options.db.deleteFrom('ip_rules').where('cidr', '=', formatRange(range));
    if (action) query = query.where('action', '=', action);
    const result = await query.executeTakeFirst();
    await this.#changed();
    return Number(result.numDeletedRows);
  }

  /** Every rule in force, the config file's first. */
  list(): IpRuleView[] {
    const now = this.#options.clock.now();
    return [...this.#configRules, ...this.#rows]
      .filter((rule) => rule.expiresAt === null || rule.expiresAt > now)
      .map((rule) => {
        const extra = rule as IpRule & { createdBy?: string | null; createdAt?: string };
        return {
          id: rule.id,
          cidr: rule.cidr,
          action: rule.action,
          reason: rule.reason,
          source: rule.source,
          created_by: extra.createdBy ?? null,
          created_at: extra.createdAt ?? null,
          expires_at: rule.expiresAt === null ? null : new Date(rule.expiresAt).toISOString(),
        };
      });
  }

  async #changed(): Promise<void> {
    // A read already under way may have started before this change: read once more after it.
    await this.#loading;
    await this.reload();
    await this.#options.state.publish(RULES_CHANNEL, 'changed').catch((error: unknown) => {
      this.#options.logger.warn(
        { err: error },
        'could not announce an IP rule change; other instances see it within seconds',
      );
    });
  }
}

function configRule(entry: { cidr: string; reason: string }, action: IpAction, index: number): IpRule {
  const range = parseCidr(entry.cidr);
  // The config loader has already refused bad entries (see `cidrProblem`).
  if (!range) throw new TypeError(cidrProblem(entry.cidr) ?? 'bad CIDR');
  return {
    id: `config-${action}-${index}`,
    cidr: formatRange(range),
    range,
    action,
    reason: entry.reason,
    source: 'config',
    expiresAt: null,
  };
}
