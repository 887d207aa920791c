import { randomBytes, timingSafeEqual } from 'node:crypto';
import { sha256Hex } from '../core/hash.ts';

/** Every API key starts with this, so scanners (and Bastion's own log redaction) can spot one. */
export const API_KEY_PREFIX = 'bst_';
const PUBLIC_ID_BYTES = 8;
const SECRET_BYTES = 32;
// bst_<16 hex public id>_<43 base64url secret>
const TOKEN_PATTERN = /^bst_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

/** A freshly made API key: the token is shown to its owner once; only the hash is stored. */
export interface NewApiKey {
  /** The whole key, `bst_<publicId>_<secret>`: show once, never store. */
  token: string;
  /** Looks the key up (stored in clear, safe to show in lists and logs). */
  publicId: string;
  /** SHA-256 of the secret part, hex: what the database keeps. */
  secretHash: string;
}

function hashSecret(secret: string): string {
  // The secret is 256 random bits: a fast hash is enough, no password hashing needed.
  return sha256Hex(secret);
}

/** Makes a new key: a public id to find it by, and a 256-bit secret. */
export function createApiKey(): NewApiKey {
  const publicId = randomBytes(PUBLIC_ID_BYTES).toString('hex');
  const secret = randomBytes(SECRET_BYTES).toString('base64url');
  return { token: `${API_KEY_PREFIX}${publicId}_${secret}`, publicId, secretHash: hashSecret(secret) };
}

/** Splits a presented key into its public id and secret, or null when it is not one of ours. */
export function parseApiKey(token: string): { publicId: string; secret: string } | null {
  const match = TOKEN_PATTERN.exec(token);
  return match ? { publicId: match[1]!, secret: match[2]! } : null;
}

/** Compares a presented secret with the stored hash in constant time. */
export function apiKeySecretMatches(secret: string, secretHash: string): boolean {
  const presented = Buffer.from(hashSecret(secret), 'hex');
  const stored = Buffer.from(secretHash, 'hex');
  return stored.length === presented.length && timingSafeEqual(presented, stored);
}
