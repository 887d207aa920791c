import { createHmac } from 'node:crypto';
import { deriveKey } from './key-derivation.ts';
import type { DataKey } from './keyring.ts';

/** What every pseudonym starts with, so one is never mistaken for the identifier it replaces. */
export const PSEUDONYM_PREFIX = 'psn_';
/** Bytes of HMAC-SHA256 kept in a pseudonym (128 bits: collisions negligible, 22 characters). */
export const PSEUDONYM_BYTES = 16;
const DEFAULT_NAMESPACE = 'default';

function namespaceKey(key: Buffer, namespace: string): Buffer {
  return deriveKey(key, `bastion/pseudonym/${namespace}`);
}

function pseudonymWith(subkey: Buffer, value: string): string {
  const mac = createHmac('sha256', subkey).update(value.normalize('NFKC'), 'utf8').digest();
  return `${PSEUDONYM_PREFIX}${mac.subarray(0, PSEUDONYM_BYTES).toString('base64url')}`;
}

/**
 * A stable, keyed, irreversible stand-in for an identifier (analytics fields): `psn_` and
 * base64url of HMAC-SHA256 over the NFKC-normalised value, truncated to 16 bytes, keyed by a
 * subkey of `key` for the namespace (default `'default'`). The same value, key and namespace give
 * the same pseudonym; another namespace or key gives an unrelated one. Normalise further (trim,
 * lower-case an e-mail) before calling when such variants should count as one.
 */
export function pseudonymize(key: Buffer, value: string, namespace = DEFAULT_NAMESPACE): string {
  return pseudonymWith(namespaceKey(key, namespace), value);
}

/** Where the pseudonym key comes from: the keyring. */
export interface PseudonymKeySource {
  active(purpose: 'pseudonym'): DataKey;
}

// Namespaces are few (one per kind of field); the bound only guards against a caller making them
// from data.
const MAX_CACHED_NAMESPACES = 256;

/**
 * `pseudonymize` with the keyring's active pseudonym key. Subkeys are derived once per namespace.
 * After the pseudonym key is rotated, new pseudonyms no longer link to the old ones (which is
 * what rotating it is for).
 */
export class Pseudonymizer {
  readonly #keyring: PseudonymKeySource;
  #keyId: string | null = null;
  readonly #subkeys = new Map<string, Buffer>();

  constructor(keyring: PseudonymKeySource) {
    this.#keyring = keyring;
  }

  /** The pseudonym of `value` in `namespace` (default `'default'`). */
  pseudonymize(value: string, namespace = DEFAULT_NAMESPACE): string {
    const { id, key } = this.#keyring.active('pseudonym');
    if (id !== this.#keyId || this.#subkeys.size >= MAX_CACHED_NAMESPACES) {
      this.#subkeys.clear();
      this.#keyId = id;
    }
    let subkey = this.#subkeys.get(namespace);
    if (subkey === undefined) {
      subkey = namespaceKey(key, namespace);
      this.#subkeys.set(namespace, subkey);
    }
    return pseudonymWith(subkey, value);
  }
}
