import type { FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { Clock } from '../core/clock.ts';
import { newId } from '../core/ids.ts';
import { maskObject } from '../data-protection/pii-masking.ts';
import type { DatabaseSchema, SecurityEventsTable } from '../storage/schema.ts';
import type { IpRule } from './ip-rule-set.ts';

/** How bad an event is. */
export type Severity = 'low' | 'medium' | 'high' | 'critical';

/** A security event before it is stored. */
export interface SecurityEventInput {
  kind: string;
  attackClass?: string | null;
  severity: Severity;
  clientIp: string | null;
  method?: string | null;
  route?: string | null;
  requestId?: string | null;
  blocked: boolean;
  details: Record<string, unknown>;
}

/** A stored event as the API shows it. */
export interface SecurityEventView {
  id: string;
  kind: string;
  attack_class: string | null;
  severity: string;
  client_ip: string | null;
  method: string | null;
  route: string | null;
  request_id: string | null;
  blocked: boolean;
  details: Record<string, unknown>;
  created_at: string;
}

const FLUSH_DELAY_MS = 200;
const MAX_BATCH = 200;
/** At most one "request from a denied address" event per address and rule in this window. */
const REPEAT_WINDOW_MS = 60_000;
const REPEAT_MEMORY = 10_000;
/** Events held while the database is unreachable; beyond this the oldest are dropped (and logged). */
const MAX_PENDING = 10_000;
/** Label children kept per counter; kinds and classes are code constants, so this is never reached. */
const MAX_CHILDREN = 500;

type CounterChild = { inc(value?: number): void };

/**
 * `bastion_security_events_total{kind,attack_class}` and `bastion_requests_blocked_total{kind}`,
 * with label children cached so an event costs a Map lookup and an addition.
 */
class SecurityEventCounters {
  readonly #events: Counter<'kind' | 'attack_class'>;
  readonly #blocked: Counter<'kind'>;
  readonly #eventChildren = new Map<string, CounterChild>();
  readonly #blockedChildren = new Map<string, CounterChild>();

  constructor(registry: Registry) {
    this.#events = new Counter({
      name: 'bastion_security_events_total',
      help: 'Security events recorded, by kind and attack class ("none" when not an attack).',
      labelNames: ['kind', 'attack_class'],
      registers: [registry],
    });
    this.#blocked = new Counter({
      name: 'bastion_requests_blocked_total',
      help: 'Requests refused by protection (denied addresses, bans, attacks, rate limits), by event kind.',
      labelNames: ['kind'],
      registers: [registry],
    });
  }

  event(kind: string, attackClass: string | null): void {
    const key = `${kind}\u0000${attackClass ?? ''}`;
    let child = this.#eventChildren.get(key);
    if (child === undefined) {
      child = this.#events.labels({ kind, attack_class: attackClass ?? 'none' });
      if (this.#eventChildren.size < MAX_CHILDREN) this.#eventChildren.set(key, child);
    }
    child.inc();
  }

  blocked(kind: string): void {
    let child = this.#blockedChildren.get(kind);
    if (child === undefined) {
      child = this.#blocked.labels({ kind });
      if (this.#blockedChildren.size < MAX_CHILDREN) this.#blockedChildren.set(kind, child);
    }
    child.inc();
  }
}

/**
 * Durable security events (attack findings, blocked requests, bans), written in batches off the
 * request path: a flood of attacks becomes a few multi-row inserts, not a write per request.
 * Repeats of the same blocked address and rule are recorded once a minute with a count. With a
 * registry, every recorded event and every refused request (repeats included) is also counted.
 */
export class SecurityEvents {
  readonly #db: Kysely<DatabaseSchema>;
  readonly #logger: Logger;
  readonly #clock: Clock;
  #pending: SecurityEventsTable[] = [];
  #timer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> = Promise.resolve();
  readonly #repeats = new Map<string, { at: number; suppressed: number }>();
  #stored: ((batch: readonly SecurityEventsTable[]) => Promise<void>) | null = null;
  readonly #counters: SecurityEventCounters | null;

  /** Runs after each batch is stored (incident grouping); its failure is logged, not retried. */
  afterStore(handler: (batch: readonly SecurityEventsTable[]) => Promise<void>): void {
    this.#stored = handler;
  }

  constructor(options: {
    db: Kysely<DatabaseSchema>;
    logger: Logger;
    clock: Clock;
    /** Where the event and blocked-request counters are registered (default: none, not counted). */
    registry?: Registry;
  }) {
    this.#db = options.db;
    this.#logger = options.logger;
    this.#clock = options.clock;
    this.#counters = options.registry ? new SecurityEventCounters(options.registry) : null;
  }

  /** Queues an event; it is stored within a fraction of a second. */
  record(input: SecurityEventInput): void {
    const now = this.#clock.now();
    if (this.#counters) {
      this.#counters.event(input.kind, input.attackClass ?? null);
      if (input.blocked) this.#counters.blocked(input.kind);
    }
    const row: SecurityEventsTable = {
      id: newId(now),
      kind: input.kind,
      attack_class: input.attackClass ?? null,
      severity: input.severity,
      client_ip: input.clientIp,
      method: input.method ?? null,
      route: input.route ?? null,
      request_id: input.requestId ?? null,
      blocked: input.blocked ? 1 : 0,
      details: JSON.stringify(maskObject(input.details)),
      created_at: new Date(now).toISOString(),
    };
    this.#pending.push(row);
    if (this.#pending.length >= MAX_BATCH) void this.flush();
    else if (this.#timer === null) {
      this.#timer = setTimeout(() => void this.flush(), FLUSH_DELAY_MS);
      this.#timer.unref();
    }
  }

  /** A request refused because its address is denied (recorded at most once a minute per address and rule). */
  blocked(request: FastifyRequest, rule: IpRule): void {
    const kind = rule.source === 'ban' ? 'banned_request' : 'ip_blocked';
    // A repeat is not stored again, but it is still a refused request.
    if (this.#repeated(`${request.ip}|${rule.id}`)) {
      this.#counters?.blocked(kind);
      return;
    }
    this.record({
      kind,
      severity: 'low',
      clientIp: request.ip,
      method: request.method,
      route: request.routeOptions.url ?? null,
      requestId: request.id,
      blocked: true,
      details: {
        rule: rule.cidr,
        reason: rule.reason,
        source: rule.source,
      },
    });
  }

  /** A request refused by a rate limit (recorded at most once a minute per address). */
  rateLimited(request: FastifyRequest): void {
    if (this.#repeated(`rate|${request.ip}`)) {
      this.#counters?.blocked('rate_limited');
      return;
    }
    this.record({
      kind: 'rate_limited',
      severity: 'low',
      clientIp: request.ip,
      method: request.method,
      route: request.routeOptions.url ?? null,
      requestId: request.id,
      blocked: true,
      details: {},
    });
  }

  /** True (and counted) when an event of this key was recorded within the last minute. */
  #repeated(key: string): boolean {
    const now = this.#clock.now();
    const last = this.#repeats.get(key);
    if (last && now - last.at < REPEAT_WINDOW_MS) {
      last.suppressed += 1;
      return true;
    }
    if (this.#repeats.size >= REPEAT_MEMORY) this.#repeats.clear();
    this.#repeats.set(key, { at: now, suppressed: 0 });
    return false;
  }

  /** Writes what is queued now. */
  flush(): Promise<void> {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    const batch = this.#pending;
    if (batch.length === 0) return this.#flushing;
    this.#pending = [];
    this.#flushing = this.#flushing.then(async () => {
      try {
        await this.#db.insertInto('security_events').values(batch).execute();
      } catch (error) {
        // Kept for the next flush rather than lost; the log says why it is late.
        this.#logger.error(
          { err: error, events: batch.length },
          'could not store security events; will retry',
        );
        this.#pending = [...batch, ...this.#pending];
        if (this.#pending.length > MAX_PENDING) {
          const dropped = this.#pending.length - MAX_PENDING;
          this.#pending = this.#pending.slice(dropped);
          this.#logger.error(
            { dropped },
            'security events dropped: the database has been unreachable too long',
          );
        }
        if (this.#timer === null) {
          this.#timer = setTimeout(() => void this.flush(), FLUSH_DELAY_MS * 10);
          this.#timer.unref();
        }
        return;
      }
      await this.#stored?.(batch).catch((error: unknown) => {
        this.#logger.error({ err: error }, 'could not group security events into incidents');
      });
    });
    return this.#flushing;
  }

  async close(): Promise<void> {
    await this.flush();
    if (this.#timer) clearTimeout(this.#timer);
  }

  /** Stored events, newest first, `limit` per page after the `before` id. */
  async list(options: { limit: number; before?: string; kind?: string }): Promise<SecurityEventView[]> {
    let query = this.#db.selectFrom('security_events').selectAll().orderBy('id', 'desc').limit(options.limit);
    if (options.before) query = query.where('id', '<', options.before);
    if (options.kind) query = query.where('kind', '=', options.kind);
    return (await query.execute()).map(viewOf);
  }
}

/** A stored event without its details and time (what live events carry). */
export function eventSummaryOf(row: SecurityEventsTable) {
  return {
    id: row.id,
    kind: row.kind,
    attack_class: row.attack_class,
    severity: row.severity,
    client_ip: row.client_ip,
    method: row.method,
    route: row.route,
    request_id: row.request_id,
    blocked: row.blocked === 1,
  };
}

function viewOf(row: SecurityEventsTable): SecurityEventView {
  return {
    ...eventSummaryOf(row),
    details: JSON.parse(row.details) as Record<string, unknown>,
    created_at: row.created_at,
  };
}
