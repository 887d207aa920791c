import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** Key length for AES-256. */
export const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** An AES-256-GCM box: nonce, ciphertext and tag, each base64url, joined by '.'. */
export function seal(key: Buffer, plaintext: Buffer, aad: Buffer): string {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return `${nonce.toString('base64url')}.${body.toString('base64url')}.${cipher.getAuthTag().toString('base64url')}`;
}

// Base64 leaves spare bits in its last character; a text that decodes to the same bytes but is
// not the canonical spelling is refused, so that no altered ciphertext is ever accepted.
function canonicalBase64url(text: string): Buffer | null {
  const bytes = Buffer.from(text, 'base64url');
  return bytes.toString('base64url') === text ? bytes : null;
}

/** Opens a box made by `seal`; null when it was altered, or the key or AAD differ. */
export function open(key: Buffer, box: string, aad: Buffer): Buffer | null {
  const parts = box.split('.');
  if (parts.length !== 3) return null;
  const [nonce, body, tag] = parts.map(canonicalBase64url);
  if (!nonce || !body || !tag) return null;
  if (nonce.length !== NONCE_BYTES || tag.length !== TAG_BYTES) return null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    return null;
  }
}
