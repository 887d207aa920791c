import { createHmac } from 'node:crypto';
import { deriveKey } from './key-derivation.ts';
import type { Keyring } from './keyring.ts';

/** Bytes of HMAC-SHA256 kept in a blind index (128 bits: collisions negligible, still compact). */
export const BLIND_INDEX_BYTES = 16;

/** How a value is normalised before indexing, so equal values index equally. */
export type Normalizer = (value: string) => string;

/** Normalisers for common fields. */
export const normalizers = {
  /** Unicode NFKC, trimmed, lower-cased: `  Jane@Example.COM ` → `jane@example.com`. */
  email: (value: string) => value.normalize('NFKC').trim().toLowerCase(),
  /** Unicode NFKC only. */
  exact: (value: string) => value.normalize('NFKC'),
} satisfies Record<string, Normalizer>;

/**
 * A blind index for equality lookup of an encrypted value: HMAC-SHA256 over the normalised value,
 * keyed by a subkey of the blind-index data key for this index's name (so two indexes of the
 * same value differ), truncated to 16 bytes, base64url (22 characters).
 */
export class BlindIndex {
  readonly #key: Buffer;
  readonly #normalize: Normalizer;

  constructor(keyring: Keyring, name: string, normalize: Normalizer = normalizers.exact) {
    this.#key = deriveKey(keyring.active('blind-index').key, `bastion/blind-index/${name}`);
    this.#normalize = normalize;
  }

  /** The index value to store beside the ciphertext and to search by. */
  compute(value: string): string {
    return createHmac('sha256', this.#key)
      .update(this.#normalize(value), 'utf8')
      .digest()
      .subarray(0, BLIND_INDEX_BYTES)
      .toString('base64url');
  }
}
