import { defineError } from '../core/errors.ts';

/** API protection's errors. */
export const ProtectionErrors = {
  requestBlocked: defineError(
    'BASTION_ERR_REQUEST_BLOCKED',
    403,
    'request_blocked',
    'This request was blocked by a security rule',
  ),
  httpsRequired: defineError(
    'BASTION_ERR_HTTPS_REQUIRED',
    403,
    'https_required',
    'Use HTTPS for this request',
  ),
  uriTooLong: defineError('BASTION_ERR_URI_TOO_LONG', 414, 'uri_too_long', 'The URL is too long'),
  tooManyHeaders: defineError(
    'BASTION_ERR_TOO_MANY_HEADERS',
    431,
    'request_header_fields_too_large',
    'The request has too many headers',
  ),
  tooManyParameters: defineError(
    'BASTION_ERR_TOO_MANY_PARAMETERS',
    400,
    'too_many_parameters',
    'The query string has too many parameters',
  ),
  jsonTooDeep: defineError(
    'BASTION_ERR_JSON_TOO_DEEP',
    400,
    'json_too_deep',
    'The JSON body is nested too deeply',
  ),
  jsonTooLarge: defineError(
    'BASTION_ERR_JSON_TOO_MANY_KEYS',
    400,
    'json_too_many_keys',
    'The JSON body has too many keys or items',
  ),
  csrfFailed: defineError(
    'BASTION_ERR_CSRF',
    403,
    'csrf_failed',
    'This request must come from the console, with its CSRF token',
  ),
  invalidHost: defineError('BASTION_ERR_INVALID_HOST', 400, 'invalid_host', 'The Host header is not valid'),
} as const;
