import { defineError } from '../core/errors.ts';

/** Errors of data protection. Decryption failures never say why (no oracle for an attacker). */
export const DataProtectionErrors = {
  decryptFailed: defineError(
    'BASTION_ERR_DECRYPT_FAILED',
    500,
    'internal_error',
    'A protected value could not be decrypted',
  ),
  unknownKey: defineError(
    'BASTION_ERR_UNKNOWN_KEY',
    500,
    'internal_error',
    'A protected value names an unknown key',
  ),
  secretNotFound: defineError('BASTION_ERR_SECRET_NOT_FOUND', 404, 'not_found', 'No such secret'),
  secretExists: defineError('BASTION_ERR_SECRET_EXISTS', 409, 'conflict', 'A secret with this name exists'),
  invalidSecretName: defineError(
    'BASTION_ERR_INVALID_SECRET_NAME',
    400,
    'bad_request',
    'Secret names are 1-200 characters of letters, digits and . _ - / :',
  ),
  invalidSecretValue: defineError(
    'BASTION_ERR_INVALID_SECRET_VALUE',
    400,
    'bad_request',
    'A secret value must be a non-empty, well-formed UTF-8 string',
  ),
  secretValueTooLarge: defineError(
    'BASTION_ERR_SECRET_VALUE_TOO_LARGE',
    413,
    'payload_too_large',
    'A secret value is at most 64 KiB (65536 bytes of UTF-8)',
  ),
  invalidRotationPeriod: defineError(
    'BASTION_ERR_INVALID_ROTATION_PERIOD',
    400,
    'bad_request',
    'A rotation period is a whole number of days from 1 to 36500',
  ),
} as const;
