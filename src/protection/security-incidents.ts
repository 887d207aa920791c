import type { Kysely } from 'kysely';
import type { Clock } from '../core/clock.ts';
import { BastionError, HttpErrors } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import type { DatabaseSchema, SecurityEventsTable, SecurityIncidentsTable } from '../storage/schema.ts';
import type { IpRules } from './ip-rules.ts';

/** Events that open or join an incident; low-severity noise (single blocks, rate limits) only counts. */
const INCIDENT_SEVERITIES = new Set(['medium', 'high', 'critical']);
const SEVERITY_RANK: Record<string, number> = { low: 0, medium: 1, high: 2, critical: 3 };
/** An event joins an open incident of its group seen within this time; later ones open a new one. */
const GROUPING_WINDOW_MS = 3600_000;

/** The overall threat level of `/security/status`. */
export type ThreatLevel = 'low' | 'elevated' | 'high' | 'critical';

/** An incident as the API shows it. */
export type IncidentView = Omit<SecurityIncidentsTable, 'group_key'>;

/**
 * Security incidents: events of the same kind from the same address (or against the same
 * account) within an hour form one incident, which an operator acknowledges and resolves; and
 * the threat level, a summary of the last hour for the console and alerting.
 */
export class SecurityIncidents {
  readonly #db: Kysely<DatabaseSchema>;
  readonly #clock: Clock;
  readonly #ipRules: IpRules;

  constructor(options: { db: Kysely<DatabaseSchema>; clock: Clock; ipRules: IpRules }) {
    this.#db = options.db;
    this.#clock = options.clock;
    this.#ipRules = options.ipRules;
  }

  /** Groups freshly stored events into incidents (called with each stored batch). */
  async absorb(events: readonly SecurityEventsTable[]): Promise<void> {
    for (const event of events) {
      if (!INCIDENT_SEVERITIES.has(event.severity)) continue;
      const subject = event.client_ip ?? (JSON.parse(event.details) as { account?: string }).account ?? '-';
      const groupKey = `${event.kind}|${subject}`;
      const since = new Date(Date.parse(event.created_at) - GROUPING_WINDOW_MS).toISOString();
      const open = await this.#db
        .selectFrom('security_incidents')
        .selectAll()
        .where('group_key', '=', groupKey)
        .where('status', '!=', 'resolved')
        .where('last_seen_at', '>', since)
        .orderBy('last_seen_at', 'desc')
        .executeTakeFirst();
      if (open) {
        const severity =
          (SEVERITY_RANK[event.severity] ?? 0) > (SEVERITY_RANK[open.severity] ?? 0)
            ? event.severity
            : open.severity;
        await this.#db
          .updateTable('security_incidents')
          .set((eb) => ({ event_count: eb('event_count', '+', 1), last_seen_at: event.created_at, severity }))
          .where('id', '=', open.id)
          .execute();
      } else {
        await this.#db
          .insertInto('security_incidents')
          .values({
            id: newId(this.#clock.now()),
            group_key: groupKey,
            kind: event.kind,
            severity: event.severity,
            client_ip: event.client_ip,
            status: 'open',
            event_count: 1,
            first_seen_at: event.created_at,
            last_seen_at: event.created_at,
            acknowledged_by: null,
            acknowledged_at: null,
            resolved_by: null,
            resolved_at: null,
          })
          .execute();
      }
    }
  }

  /** Incidents, newest first, optionally of one status. */
  async list(options: { limit: number; before?: string; status?: string }): Promise<IncidentView[]> {
    let query = this.#db
      .selectFrom('security_incidents')
      .selectAll()
      .orderBy('id', 'desc')
      .limit(options.limit);
    if (options.before) query = query.where('id', '<', options.before);
    if (options.status) query = query.where('status', '=', options.status);
    return (await query.execute()).map(({ group_key: _key, ...view }) => view);
  }

  /** Moves an incident to `acknowledged` or `resolved`; 404 when unknown, 409 when already resolved. */
  async transition(id: string, to: 'acknowledged' | 'resolved', by: string | null): Promise<IncidentView> {
    const incident = await this.#db
      .selectFrom('security_incidents')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    if (!incident) throw new BastionError(HttpErrors.notFound);
    if (incident.status === 'resolved') {
      throw new BastionError(HttpErrors.conflict, { message: 'The incident is already resolved' });
    }
    const now = new Date(this.#clock.now()).toISOString();
    const changes =
      to === 'acknowledged'
        ? { status: to, acknowledged_by: by, acknowledged_at: now }
        : { status: to, resolved_by: by, resolved_at: now };
    await this.#db.updateTable('security_incidents').set(changes).where('id', '=', id).execute();
    const { group_key: _key, ...view } = { ...incident, ...changes };
    return view;
  }

  /** The threat level and what it is made of, over the last hour. */
  async status(): Promise<{
    threat_level: ThreatLevel;
    window_minutes: number;
    events_last_hour: Record<string, number>;
    blocked_last_hour: number;
    open_incidents: Record<string, number>;
    active_bans: number;
  }> {
    const since = new Date(this.#clock.now() - 3600_000).toISOString();
    const events = await this.#db
      .selectFrom('security_events')
      .select([
        'kind',
        (eb) => eb.fn.countAll<number | string>().as('count'),
        (eb) => eb.fn.sum<number | string>('blocked').as('blocked'),
      ])
      .where('created_at', '>', since)
      .groupBy('kind')
      .execute();
    const incidents = await this.#db
      .selectFrom('security_incidents')
      .select(['severity', (eb) => eb.fn.countAll<number | string>().as('count')])
      .where('status', '!=', 'resolved')
      .groupBy('severity')
      .execute();
    const byKind = Object.fromEntries(events.map((row) => [row.kind, Number(row.count)]));
    const blocked = events.reduce((sum, row) => sum + Number(row.blocked ?? 0), 0);
    const open = Object.fromEntries(incidents.map((row) => [row.severity, Number(row.count)]));
    const total = Object.values(byKind).reduce((sum, count) => sum + count, 0);
    const activeBans = this.#ipRules.list().filter((rule) => rule.source === 'ban').length;
    return {
      threat_level: levelOf(total, open),
      window_minutes: 60,
      events_last_hour: byKind,
      blocked_last_hour: blocked,
      open_incidents: open,
      active_bans: activeBans,
    };
  }
}

/**
 * critical: an open critical incident or 1000+ events in the hour; high: an open high incident or
 * 100+; elevated: any open incident or 10+; low otherwise.
 */
function levelOf(eventsLastHour: number, open: Record<string, number>): ThreatLevel {
  if ((open.critical ?? 0) > 0 || eventsLastHour >= 1000) return 'critical';
  if ((open.high ?? 0) > 0 || eventsLastHour >= 100) return 'high';
  if (Object.values(open).some((count) => count > 0) || eventsLastHour >= 10) return 'elevated';
  return 'low';
}
