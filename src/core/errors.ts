/**
 * Bastion's error model. Every failure a client can see has a definition: a stable internal
 * code (`BASTION_ERR_…`), the HTTP status, the public `error` identifier and a message.
 * Capabilities declare their own definitions in their `errors.ts` with `defineError`.
 */
export interface ErrorDefinition {
  /** Stable internal code, e.g. `BASTION_ERR_NOT_FOUND`. */
  readonly code: string;
  /** HTTP status sent to the client. */
  readonly status: number;
  /** Public, snake_case identifier in the response body's `error` field. */
  readonly error: string;
  /** Default public message. */
  readonly message: string;
}

const registry = new Map<string, ErrorDefinition>();

/** Declares an error; a duplicate code is a programming error and throws at start-up. */
export function defineError(code: string, status: number, error: string, message: string): ErrorDefinition {
  if (!/^BASTION_ERR_[A-Z0-9_]+$/.test(code)) throw new TypeError(`Invalid error code ${code}`);
  if (registry.has(code)) throw new TypeError(`Duplicate error code ${code}`);
  const definition = Object.freeze({ code, status, error, message });
  registry.set(code, definition);
  return definition;
}

/** Every definition declared so far (for documentation and tests). */
export function errorDefinitions(): ErrorDefinition[] {
  return [...registry.values()];
}

/** An error meant for the client: its status, code and message are safe to send. */
export class BastionError extends Error {
  readonly definition: ErrorDefinition;
  readonly statusCode: number;
  readonly code: string;
  /** Extra public fields merged into the response body (e.g. validation details). */
  readonly details: Record<string, unknown> | undefined;
  /** Response headers that belong to this error (e.g. Retry-After). */
  readonly headers: Record<string, string> | undefined;

  constructor(
    definition: ErrorDefinition,
    options: {
      message?: string;
      details?: Record<string, unknown>;
      headers?: Record<string, string>;
      cause?: unknown;
    } = {},
  ) {
    super(options.message ?? definition.message, { cause: options.cause });
    this.name = 'BastionError';
    this.definition = definition;
    this.statusCode = definition.status;
    this.code = definition.code;
    this.details = options.details;
    this.headers = options.headers;
  }
}

/** Errors of the HTTP layer shared by every capability. */
export const HttpErrors = {
  malformedJson: defineError(
    'BASTION_ERR_MALFORMED_JSON',
    400,
    'malformed_json',
    'Request body is not valid JSON',
  ),
  badRequest: defineError('BASTION_ERR_BAD_REQUEST', 400, 'bad_request', 'The request is not valid'),
  validation: defineError(
    'BASTION_ERR_VALIDATION',
    400,
    'validation_failed',
    'The request does not match the schema',
  ),
  unauthorized: defineError('BASTION_ERR_UNAUTHORIZED', 401, 'unauthorized', 'Authentication is required'),
  forbidden: defineError('BASTION_ERR_FORBIDDEN', 403, 'forbidden', 'You do not have permission to do this'),
  notFound: defineError('BASTION_ERR_NOT_FOUND', 404, 'not_found', 'Not found'),
  methodNotAllowed: defineError(
    'BASTION_ERR_METHOD_NOT_ALLOWED',
    405,
    'method_not_allowed',
    'Method not allowed',
  ),
  conflict: defineError(
    'BASTION_ERR_CONFLICT',
    409,
    'conflict',
    'The request conflicts with the current state',
  ),
  payloadTooLarge: defineError(
    'BASTION_ERR_PAYLOAD_TOO_LARGE',
    413,
    'payload_too_large',
    'Request body is larger than allowed',
  ),
  requestTimeout: defineError(
    'BASTION_ERR_REQUEST_TIMEOUT',
    408,
    'request_timeout',
    'The request was not received in time',
  ),
  headersTooLarge: defineError(
    'BASTION_ERR_HEADERS_TOO_LARGE',
    431,
    'headers_too_large',
    'Request headers are larger than allowed',
  ),
  unsupportedMediaType: defineError(
    'BASTION_ERR_UNSUPPORTED_MEDIA_TYPE',
    415,
    'unsupported_media_type',
    'Content-Type is not supported',
  ),
  unprocessable: defineError(
    'BASTION_ERR_UNPROCESSABLE',
    422,
    'unprocessable_entity',
    'The request cannot be processed',
  ),
  tooManyRequests: defineError(
    'BASTION_ERR_TOO_MANY_REQUESTS',
    429,
    'too_many_requests',
    'Too many requests',
  ),
  internal: defineError('BASTION_ERR_INTERNAL', 500, 'internal_error', 'Internal server error'),
  overloaded: defineError(
    'BASTION_ERR_OVERLOADED',
    503,
    'service_overloaded',
    'The service is overloaded; retry later',
  ),
  unavailable: defineError(
    'BASTION_ERR_UNAVAILABLE',
    503,
    'service_unavailable',
    'The service is unavailable',
  ),
} as const;
