import { hkdfSync } from 'node:crypto';

// A fixed, public salt: HKDF's security rests on the master key; the salt only separates Bastion's
// derivations from any other use of the same key material.
const SALT = Buffer.from('bastion/hkdf/v1');

/** A 32-byte subkey of `root` for one purpose; distinct labels give independent keys. */
export function deriveKey(root: Buffer, label: string, length = 32): Buffer {
  return Buffer.from(hkdfSync('sha256', root, SALT, Buffer.from(label, 'utf8'), length));
}

/** Labels of keys derived straight from the master key. */
export const KEY_LABELS = {
  /** Wraps (encrypts) every data key stored in the database. */
  keyEncryption: 'bastion/kek/v1',
} as const;
