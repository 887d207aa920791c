import { BastionError } from '../core/errors.ts';
import { open, seal } from './aes-gcm.ts';
import { DataProtectionErrors } from './errors.ts';
import type { Keyring } from './keyring.ts';

/** Where a value lives; bound into the ciphertext so it cannot be moved elsewhere. */
export interface FieldContext {
  table: string;
  column: string;
  /** The row's identity (primary key, or its parts joined). */
  rowId: string | number;
}

/** Version tag at the start of every field ciphertext. */
export const FIELD_VERSION = 'v1';
const PREFIX = `${FIELD_VERSION}.`;

function aad(keyId: string, context: FieldContext): Buffer {
  // Every part is length-prefixed so that ('a|b', 'c') and ('a', 'b|c') cannot collide.
  const parts = [FIELD_VERSION, keyId, context.table, context.column, String(context.rowId)];
  return Buffer.from(parts.map((part) => `${part.length}:${part}`).join('|'));
}

/** The key id a field ciphertext was made with, or null when it is not one. */
export function keyIdOf(ciphertext: string): string | null {
  if (!ciphertext.startsWith(PREFIX)) return null;
  const end = ciphertext.indexOf('.', PREFIX.length);
  return end === -1 ? null : ciphertext.slice(PREFIX.length, end);
}

/** True when the value looks like a field ciphertext. */
export function isFieldCiphertext(value: string): boolean {
  return keyIdOf(value) !== null;
}

/**
 * AES-256-GCM field encryption: a fresh random nonce per value; the ciphertext
 * (`v1.<keyId>.<nonce>.<ciphertext>.<tag>`) carries its version and key id; the additional
 * authenticated data binds it to its table, column and row.
 */
export class FieldCipher {
  readonly #keyring: Keyring;

  constructor(keyring: Keyring) {
    this.#keyring = keyring;
  }

  /** Encrypts with the active field key. */
  encrypt(plaintext: string | Buffer, context: FieldContext): string {
    const { id, key } = this.#keyring.active('field');
    const bytes = typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext;
    return `${PREFIX}${id}.${seal(key, bytes, aad(id, context))}`;
  }

  /** Decrypts to bytes; throws BASTION_ERR_DECRYPT_FAILED when altered, moved or under an unknown key. */
  async decryptBytes(ciphertext: string, context: FieldContext): Promise<Buffer> {
    const keyId = keyIdOf(ciphertext);
    if (!keyId) throw new BastionError(DataProtectionErrors.decryptFailed);
    const loaded = this.#keyring.cached(keyId) ?? (await this.#keyring.byId(keyId));
    if (loaded.purpose !== 'field') throw new BastionError(DataProtectionErrors.decryptFailed);
    const plaintext = open(
      loaded.key,
      ciphertext.slice(PREFIX.length + keyId.length + 1),
      aad(keyId, context),
    );
    if (!plaintext) throw new BastionError(DataProtectionErrors.decryptFailed);
    return plaintext;
  }

  /** Decrypts to a UTF-8 string. */
  async decrypt(ciphertext: string, context: FieldContext): Promise<string> {
    return (await this.decryptBytes(ciphertext, context)).toString('utf8');
  }

  /** True when the value was encrypted with a key other than the active one. */
  needsReencryption(ciphertext: string): boolean {
    const keyId = keyIdOf(ciphertext);
    return keyId !== null && keyId !== this.#keyring.active('field').id;
  }
}
