import Type, { type TSchema } from 'typebox';
import { Closed, ErrorResponse, Id } from '../schemas.ts';

/** Where every reference API route lives. */
export const ORGANIZATIONS_PATH = '/api/v1/organizations';

/** `:org`. */
export const OrgParams = Closed({ org: Id });

/** `:org` and `:id` (a record of the organization). */
export const OrgRecordParams = Closed({ org: Id, id: Id });

/** The path parameters of a tenant route. */
export interface OrgParamsValue {
  org: string;
}

/** The path parameters of a tenant record route. */
export interface OrgRecordParamsValue {
  org: string;
  id: string;
}

/** A nullable string. */
export const Nullable = (schema: TSchema) => Type.Union([schema, Type.Null()]);

/** An ISO-8601 UTC time as stored. */
export const Time = Type.String({ description: 'ISO-8601 UTC' });

/** An arbitrary JSON object (workflow definitions). */
export const JsonObject = Type.Object({}, { additionalProperties: true, description: 'A JSON object' });

/** The error answers every tenant route may give (documented in OpenAPI). */
export const TENANT_ERRORS = {
  400: ErrorResponse,
  401: ErrorResponse,
  403: ErrorResponse,
  404: ErrorResponse,
} as const;

/** No content (DELETE). */
export const NoContent = Type.Null({ description: 'No content' });
