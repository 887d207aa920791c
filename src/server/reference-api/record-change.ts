import type { FastifyRequest } from 'fastify';
import { actorOf, requestContext } from '../../identity/audit-log.ts';
import type { Services } from '../services.ts';

/** What one change did, for the audit trail. Never put secrets or URLs in `details`. */
export interface Change {
  /** Dotted verb, e.g. `workflow.update`. */
  action: string;
  orgId: string;
  target: { type: string; id: string | null };
  outcome?: 'success' | 'failure';
  details?: Record<string, unknown>;
}

/**
 * Records a change in the audit trail with the caller and the request's context. Handlers await it
 * before answering, so an answered change is always on record.
 */
export function recordChange(services: Services, request: FastifyRequest, change: Change): Promise<void> {
  return services.identity.audit.record({
    category: 'change',
    action: change.action,
    outcome: change.outcome ?? 'success',
    orgId: change.orgId,
    actor: actorOf(request.principal),
    target: change.target,
    details: change.details,
    context: requestContext(request),
  });
}
