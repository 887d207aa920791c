/**
 * Tables known to Kysely. Each capability adds its tables here as its migrations land, so
 * queries are type-checked against one description of the database.
 */
export interface InstanceSettingsTable {
  key: string;
  value: string;
  /** ISO-8601 UTC. */
  updated_at: string;
}

/** A data key, wrapped (encrypted) by the key-encryption key derived from the master key. */
export interface DataKeysTable {
  id: string;
  /** What the key is for: 'field', 'blind-index', 'pseudonym'. */
  purpose: string;
  /** 'active' (encrypts), 'decrypt-only' (after rotation), 'retired' (nothing left under it). */
  state: string;
  /** `v1.<nonce>.<ciphertext>.<tag>`, base64url parts. */
  wrapped_key: string;
  created_at: string;
  state_changed_at: string;
}

/** A named secret in the vault; its values live in `secret_versions`. */
export interface SecretsTable {
  name: string;
  current_version: number;
  rotation_period_days: number | null;
  created_at: string;
  rotated_at: string;
  last_read_at: string | null;
}

/** One version of a secret, encrypted with field encryption. */
export interface SecretVersionsTable {
  name: string;
  version: number;
  value: string;
  created_at: string;
}

/** The whole database. */
export interface DatabaseSchema {
  instance_settings: InstanceSettingsTable;
  data_keys: DataKeysTable;
  secrets: SecretsTable;
  secret_versions: SecretVersionsTable;
}
