import { defineError } from '../core/errors.ts';

/**
 * Errors of identity. Login failures all share one definition, whatever the cause (unknown
 * e-mail, wrong password, locked or disabled account): the answer must not tell them apart.
 */
export const IdentityErrors = {
  invalidCredentials: defineError(
    'BASTION_ERR_INVALID_CREDENTIALS',
    401,
    'invalid_credentials',
    'The e-mail address or password is not correct',
  ),
  invalidMfa: defineError(
    'BASTION_ERR_INVALID_MFA',
    401,
    'invalid_mfa',
    'The MFA code or token is not valid',
  ),
  invalidRefreshToken: defineError(
    'BASTION_ERR_INVALID_REFRESH_TOKEN',
    401,
    'invalid_refresh_token',
    'The refresh token is not valid',
  ),
  invalidToken: defineError('BASTION_ERR_INVALID_TOKEN', 401, 'unauthorized', 'Authentication is required'),
  tooManyAttempts: defineError(
    'BASTION_ERR_TOO_MANY_ATTEMPTS',
    429,
    'too_many_requests',
    'Too many failed attempts; try again later',
  ),
  reauthenticationRequired: defineError(
    'BASTION_ERR_REAUTHENTICATION_REQUIRED',
    403,
    'reauthentication_required',
    'Confirm your password (and MFA code) to do this',
  ),
  weakPassword: defineError('BASTION_ERR_WEAK_PASSWORD', 422, 'weak_password', 'The password is too weak'),
  invalidEmail: defineError(
    'BASTION_ERR_INVALID_EMAIL',
    400,
    'validation_failed',
    'The e-mail address is not valid',
  ),
  emailTaken: defineError(
    'BASTION_ERR_EMAIL_TAKEN',
    409,
    'conflict',
    'A user with this e-mail address exists',
  ),
  userNotFound: defineError('BASTION_ERR_USER_NOT_FOUND', 404, 'not_found', 'Not found'),
  mfaAlreadyEnabled: defineError(
    'BASTION_ERR_MFA_ALREADY_ENABLED',
    409,
    'conflict',
    'MFA is already enabled; disable it first',
  ),
  mfaNotPending: defineError(
    'BASTION_ERR_MFA_NOT_PENDING',
    409,
    'conflict',
    'Start MFA set-up first (POST /auth/mfa/totp/setup)',
  ),
  mfaNotEnabled: defineError('BASTION_ERR_MFA_NOT_ENABLED', 409, 'conflict', 'MFA is not enabled'),
  mfaInvalidCode: defineError(
    'BASTION_ERR_MFA_INVALID_CODE',
    400,
    'invalid_code',
    'The MFA code is not valid',
  ),
  tokenServiceUnavailable: defineError(
    'BASTION_ERR_REVOCATION_UNAVAILABLE',
    503,
    'service_unavailable',
    'Sessions cannot be checked right now; try again shortly',
  ),
  lastOwner: defineError(
    'BASTION_ERR_LAST_OWNER',
    409,
    'conflict',
    'An organization must keep at least one owner',
  ),
};
