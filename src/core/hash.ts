import { createHash } from 'node:crypto';

/**
 * SHA-256 of a UTF-8 string, hex. For values that are already high-entropy secrets (refresh
 * tokens, API key secrets, one-time tokens): a fast hash is enough to store or key them; passwords
 * use argon2id instead.
 */
export function sha256Hex(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}
