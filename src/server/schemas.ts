import Type, { type TSchema } from 'typebox';
import { ID_PATTERN_SOURCE } from '../core/ids.ts';

/**
 * Schema pieces shared by the HTTP API (TypeBox → JSON Schema, validated by Fastify and published
 * in `/openapi.json`). Request bodies are closed (`additionalProperties: false`): a field the
 * caller may not set is refused with 400, never silently stored (no mass assignment).
 */

/** A record id. */
export const Id = Type.String({ pattern: ID_PATTERN_SOURCE, description: 'Record id' });

/** A closed object: unknown properties are refused. */
export const Closed = <T extends Record<string, TSchema>>(properties: T, description?: string) =>
  Type.Object(properties, { additionalProperties: false, ...(description ? { description } : {}) });

/** `?limit=&cursor=` of every list. */
export const ListQuery = Closed({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
});

/** The parsed list query. */
export interface ListQueryValue {
  limit?: number;
  cursor?: string;
}

/** `?limit=&cursor=&action=` of audit event lists. */
export const AuditQuery = Closed({
  ...ListQuery.properties,
  action: Type.Optional(
    Type.String({ pattern: '^[a-z][a-z0-9_.]{0,63}$', description: 'e.g. workflow.update' }),
  ),
});

const NullableString = Type.Union([Type.String(), Type.Null()]);
const AuditReference = Type.Object({ type: Type.String(), id: NullableString });

/** One audit event as every audit list answers it. */
export const AuditEvent = Type.Object({
  id: Type.String(),
  org_id: NullableString,
  category: Type.String(),
  action: Type.String(),
  outcome: Type.String(),
  actor: AuditReference,
  target: Type.Union([AuditReference, Type.Null()]),
  ip: NullableString,
  user_agent: NullableString,
  request_id: NullableString,
  details: Type.Object({}, { additionalProperties: true }),
  created_at: Type.String({ description: 'ISO-8601 UTC' }),
});

/** The parsed audit query. */
export interface AuditQueryValue extends ListQueryValue {
  action?: string;
}

/** `{items, next_cursor}` of `item`. */
export const Page = (item: TSchema) =>
  Type.Object({ items: Type.Array(item), next_cursor: Type.Union([Type.String(), Type.Null()]) });

/** The error body every failure answers with. */
export const ErrorResponse = Type.Object(
  { error: Type.String(), message: Type.String(), request_id: Type.String() },
  { additionalProperties: true, description: 'Error' },
);

/** A short name (organizations, workflows, integrations, keys). */
export const Name = Type.String({ minLength: 1, maxLength: 200 });

/** Default page size when `limit` is absent. */
export const DEFAULT_LIMIT = 50;
