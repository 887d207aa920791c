import type { FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.ts';
import { newId } from '../core/ids.ts';
import type { Principal } from '../core/principal.ts';
import { maskObject, type PiiMaskingOptions } from '../data-protection/pii-masking.ts';
import type { AuditEventsTable, DatabaseSchema } from '../storage/schema.ts';

/** What kind of event: an authentication step, a change to data, or a security signal. */
export type AuditCategory = 'authentication' | 'change' | 'security';

/** Where a request came from, as recorded with each event. */
export interface RequestContext {
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
}

/** Who did it. */
export interface AuditActor {
  type: 'user' | 'api_key' | 'system' | 'anonymous';
  id: string | null;
}

/** One event to record. */
export interface AuditEventInput {
  category: AuditCategory;
  /** Dotted verb, e.g. `auth.login`, `workflow.update`. */
  action: string;
  outcome?: 'success' | 'failure';
  orgId?: string | null;
  actor: AuditActor;
  target?: { type: string; id: string | null };
  /** Extra facts; PII in them is masked before storing. Never put secrets here. */
  details?: Record<string, unknown>;
  context?: RequestContext;
}

/** An event as read back by the API. */
export interface AuditEvent {
  id: string;
  org_id: string | null;
  category: string;
  action: string;
  outcome: string;
  actor: { type: string; id: string | null };
  target: { type: string; id: string | null } | null;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  details: Record<string, unknown>;
  created_at: string;
}

const USER_AGENT_MAX = 512;

/** The request facts an audit event keeps: client IP (after trusted proxies), user agent, request id. */
export function requestContext(request: FastifyRequest): RequestContext {
  const agent = request.headers['user-agent'];
  return {
    ip: request.ip ?? null,
    userAgent: typeof agent === 'string' ? agent.slice(0, USER_AGENT_MAX) : null,
    requestId: request.id,
  };
}

/** The actor behind an authenticated request. */
export function actorOf(principal: Principal | null): AuditActor {
  return principal ? { type: principal.kind, id: principal.id } : { type: 'anonymous', id: null };
}

function toEvent(row: AuditEventsTable): AuditEvent {
  return {
    id: row.id,
    org_id: row.org_id,
    category: row.category,
    action: row.action,
    outcome: row.outcome,
    actor: { type: row.actor_type, id: row.actor_id },
    target: row.target_type ? { type: row.target_type, id: row.target_id } : null,
    ip: row.ip,
    user_agent: row.user_agent,
    request_id: row.request_id,
    details: JSON.parse(row.details) as Record<string, unknown>,
    created_at: row.created_at,
  };
}

/**
 * The durable audit trail: every authentication event and every change is written to the
 * database before the request that caused it is answered (the caller awaits `record`), and also
 * logged as one `audit` line for log pipelines. Details are PII-masked with the instance's
 * privacy settings.
 */
export class AuditLog {
  readonly #db: Kysely<DatabaseSchema>;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #masking: PiiMaskingOptions;

  constructor(options: {
    db: Kysely<DatabaseSchema>;
    clock: Clock;
    logger: Logger;
    masking?: PiiMaskingOptions;
  }) {
    this.#db = options.db;
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#masking = options.masking ?? {};
  }

  readonly #listeners = new Set<(input: AuditEventInput) => void>();

  /** Calls `listener` with every event once it is stored (threat scoring reads failures here). */
  onRecorded(listener: (input: AuditEventInput) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Writes one event; resolves once it is stored. */
  async record(input: AuditEventInput): Promise<void> {
    const now = this.#clock.now();
    const details = maskObject(input.details ?? {}, this.#masking) as Record<string, unknown>;
    const row: AuditEventsTable = {
      id: newId(now),
      org_id: input.orgId ?? null,
      category: input.category,
      action: input.action,
      outcome: input.outcome ?? 'success',
      actor_type: input.actor.type,
      actor_id: input.actor.id,
      target_type: input.target?.type ?? null,
      target_id: input.target?.id ?? null,
      ip: input.context?.ip ?? null,
      user_agent: input.context?.userAgent ?? null,
      request_id: input.context?.requestId ?? null,
      details: JSON.stringify(details),
      created_at: new Date(now).toISOString(),
    };
    await this.#db.insertInto('audit_events').values(row).execute();
    const level = input.category === 'security' || row.outcome === 'failure' ? 'warn' : 'info';
    this.#logger[level](
      {
        event: 'audit',
        audit_id: row.id,
        category: row.category,
        action: row.action,
        outcome: row.outcome,
        actor: input.actor,
        org_id: row.org_id,
        target: input.target,
        request_id: row.request_id,
      },
      `audit ${row.action} ${row.outcome}`,
    );
    for (const listener of this.#listeners) listener(input);
  }

  /**
   * A page of events, newest first: an organization's own (`orgId`: changes in it, its API keys'
   * use), one user's (`actorId`: their logins, sessions, MFA), or every event (neither; the
   * platform admin's view). A user's account-level events are never shown to an organization:
   * membership does not entitle anyone to another person's login history.
   */
  async list(options: {
    orgId?: string;
    actorId?: string;
    limit: number;
    cursor?: string | null;
    action?: string | null;
  }): Promise<{ items: AuditEvent[]; next_cursor: string | null }> {
    let query = this.#db.selectFrom('audit_events').selectAll();
    if (options.orgId !== undefined) query = query.where('org_id', '=', options.orgId);
    if (options.actorId !== undefined) query = query.where('actor_id', '=', options.actorId);
    if (options.cursor) query = query.where('id', '<', options.cursor);
    if (options.action) query = query.where('action', '=', options.action);
    const rows = await query
      .orderBy('id', 'desc')
      .limit(options.limit + 1)
      .execute();
    const page = rows.slice(0, options.limit);
    return {
      items: page.map(toEvent),
      next_cursor: rows.length > options.limit ? page[page.length - 1]!.id : null,
    };
  }

  /** An organization's own events, newest first. */
  listForOrganization(
    orgId: string,
    options: { limit: number; cursor?: string | null; action?: string | null },
  ) {
    return this.list({ ...options, orgId });
  }

  /** A user's own events, newest first (for support and tests). */
  async listForActor(actorId: string, limit = 100): Promise<AuditEvent[]> {
    return (await this.list({ actorId, limit })).items;
  }
}
