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
} as const;
