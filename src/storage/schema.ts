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

/** A person who can log in. `email` is encrypted; `email_index` is its blind index. */
export interface UsersTable {
  id: string;
  email: string;
  email_index: string;
  name: string | null;
  password_hash: string;
  /** 0 or 1. */
  platform_admin: number;
  /** 'active' or 'disabled'. */
  status: string;
  /** 0 or 1. */
  mfa_enabled: number;
  password_changed_at: string;
  last_login_at: string | null;
  created_at: string;
  updated_at: string;
}

/** A user's TOTP secret (encrypted); 'pending' until the first code confirms it. */
export interface UserMfaTable {
  user_id: string;
  totp_secret: string;
  state: string;
  /** The last accepted TOTP time step; a code at or before it is refused. */
  last_used_step: number | string | null;
  created_at: string;
  enabled_at: string | null;
}

/** One single-use backup code, stored as a keyed hash. */
export interface MfaBackupCodesTable {
  user_id: string;
  code_hash: string;
  used_at: string | null;
}

/** A login session: one refresh-token family. */
export interface SessionsTable {
  id: string;
  user_id: string;
  created_at: string;
  last_seen_at: string;
  /** Absolute end of the session. */
  expires_at: string;
  revoked_at: string | null;
  revoked_reason: string | null;
  /** 1 when the login passed MFA. */
  mfa: number;
  ip: string | null;
  user_agent: string | null;
}

/** A refresh token (hashed); single-use: `used_at` is set when it is exchanged. */
export interface RefreshTokensTable {
  token_hash: string;
  session_id: string;
  created_at: string;
  used_at: string | null;
}

/** An access-token signing key; the private half is field-encrypted. */
export interface SigningKeysTable {
  id: string;
  algorithm: string;
  public_jwk: string;
  private_jwk: string;
  /** 'active' (signs), 'published' (verifies only), 'retired'. */
  state: string;
  created_at: string;
  retired_at: string | null;
}

/** A tenant. */
export interface OrganizationsTable {
  id: string;
  name: string;
  created_by: string | null;
  created_at: string;
  updated_at: string;
}

/** A user's role in an organization. */
export interface MembershipsTable {
  org_id: string;
  user_id: string;
  role: string;
  created_at: string;
  updated_at: string;
}

/** An organization's API key; only a hash of its secret is kept. */
export interface ApiKeysTable {
  id: string;
  org_id: string;
  name: string;
  secret_hash: string;
  /** JSON array of permission names. */
  permissions: string;
  created_by: string | null;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

/** A workflow; every change also writes a row to `workflow_versions`. */
export interface WorkflowsTable {
  id: string;
  org_id: string;
  name: string;
  description: string | null;
  /** JSON object. */
  definition: string;
  version: number;
  created_by: string | null;
  created_at: string;
  updated_at: string;
}

/** One version of a workflow, as it was saved. */
export interface WorkflowVersionsTable {
  workflow_id: string;
  version: number;
  name: string;
  description: string | null;
  definition: string;
  created_by: string | null;
  created_at: string;
}

/** An outbound integration; its credentials live in the secrets vault under `secret_name`. */
export interface IntegrationsTable {
  id: string;
  org_id: string;
  name: string;
  type: string;
  url: string;
  secret_name: string;
  created_by: string | null;
  created_at: string;
  updated_at: string;
  last_test_at: string | null;
  last_test_status: string | null;
}

/** A durable record of an authentication event or a change. */
export interface AuditEventsTable {
  id: string;
  org_id: string | null;
  /** 'authentication', 'change' or 'security'. */
  category: string;
  action: string;
  /** 'success' or 'failure'. */
  outcome: string;
  /** 'user', 'api_key', 'system' or 'anonymous'. */
  actor_type: string;
  actor_id: string | null;
  target_type: string | null;
  target_id: string | null;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  /** JSON object, PII-masked. */
  details: string;
  created_at: string;
}

/** An IP allow or deny rule made through the API, or an automatic ban. */
export interface IpRulesTable {
  id: string;
  /** Canonical CIDR (a single address has no prefix). */
  cidr: string;
  /** 'allow' or 'deny'. */
  action: string;
  reason: string;
  /** 'api' or 'ban'. */
  source: string;
  created_by: string | null;
  created_at: string;
  expires_at: string | null;
}

/** A durable security event: an attack finding, a blocked request, a ban. */
export interface SecurityEventsTable {
  id: string;
  /** 'attack', 'ip_blocked', 'ban', … */
  kind: string;
  attack_class: string | null;
  /** 'low', 'medium', 'high' or 'critical'. */
  severity: string;
  client_ip: string | null;
  method: string | null;
  route: string | null;
  request_id: string | null;
  blocked: number;
  /** JSON object: findings (masked fragments), rule, duration… */
  details: string;
  created_at: string;
}

/** Related security events grouped into one incident. */
export interface SecurityIncidentsTable {
  id: string;
  /** What groups events: kind and address (or account). */
  group_key: string;
  kind: string;
  severity: string;
  client_ip: string | null;
  /** 'open', 'acknowledged' or 'resolved'. */
  status: string;
  event_count: number;
  first_seen_at: string;
  last_seen_at: string;
  acknowledged_by: string | null;
  acknowledged_at: string | null;
  resolved_by: string | null;
  resolved_at: string | null;
}

/** An alert rule created through the API (config-file rules are not stored). */
export interface AlertRulesTable {
  id: string;
  name: string;
  /** JSON: the rule as the API accepts it. */
  definition: string;
  created_by: string | null;
  created_at: string;
  updated_at: string;
}

/** The current state of one alert (one per fingerprint). */
export interface AlertsTable {
  fingerprint: string;
  rule_name: string;
  /** 'pending', 'firing' or 'resolved'. */
  status: string;
  severity: string;
  labels: string;
  annotations: string;
  value: number | null;
  pending_since: string | null;
  started_at: string | null;
  ended_at: string | null;
  acknowledged_by: string | null;
  acknowledged_at: string | null;
  escalated_at: string | null;
  updated_at: string;
}

/** What happened to alerts: pending, firing, resolved, acknowledged, escalated, notified… */
export interface AlertHistoryTable {
  id: string;
  fingerprint: string;
  rule_name: string;
  event: string;
  severity: string;
  value: number | null;
  details: string;
  at: string;
}

/** A silence: alerts matching every matcher are not notified between starts_at and ends_at. */
export interface AlertSilencesTable {
  id: string;
  /** JSON array of `{name, value, op}` matchers. */
  matchers: string;
  starts_at: string;
  ends_at: string;
  created_by: string | null;
  author: string;
  comment: string;
  created_at: string;
}

/** A notification group's timing (group wait, group interval, repeat interval). */
export interface AlertGroupsTable {
  group_key: string;
  first_seen_at: string;
  last_sent_at: string | null;
  /** What the last notification said (hash of its alerts and their states). */
  last_digest: string | null;
}

/** Durable delivery of notifications. */
export interface NotificationOutboxTable {
  id: string;
  idempotency_key: string;
  channel: string;
  payload: string;
  /** 'pending', 'delivered' or 'dead'. */
  status: string;
  attempts: number;
  next_attempt_at: string;
  last_error: string | null;
  created_at: string;
  updated_at: string;
  delivered_at: string | null;
}

/** A named lease held by one instance at a time (alert evaluation and delivery). */
export interface LeasesTable {
  name: string;
  holder: string;
  /** Milliseconds since the epoch. */
  expires_at: number;
}

/**
 * One series' rollup over one bucket (a minute, or an hour once compacted) on one instance.
 * Min, max and last are null when no sample had a value (a ratio without requests).
 */
export interface MetricRollupsTable {
  series: string;
  /** '1m' or '1h'. */
  resolution: string;
  /** Milliseconds since the epoch. */
  bucket_start: number;
  instance_id: string;
  sample_count: number;
  value_sum: number;
  value_min: number | null;
  value_max: number | null;
  value_last: number | null;
  numerator: number;
  denominator: number;
  hist_sum: number;
  hist_count: number;
  /** JSON array of per-bucket (not cumulative) latency counts, the last one +Inf; null otherwise. */
  buckets: string | null;
  updated_at: string;
}

/** The whole database. */
export interface DatabaseSchema {
  instance_settings: InstanceSettingsTable;
  data_keys: DataKeysTable;
  secrets: SecretsTable;
  secret_versions: SecretVersionsTable;
  users: UsersTable;
  user_mfa: UserMfaTable;
  mfa_backup_codes: MfaBackupCodesTable;
  sessions: SessionsTable;
  refresh_tokens: RefreshTokensTable;
  signing_keys: SigningKeysTable;
  organizations: OrganizationsTable;
  memberships: MembershipsTable;
  api_keys: ApiKeysTable;
  workflows: WorkflowsTable;
  workflow_versions: WorkflowVersionsTable;
  integrations: IntegrationsTable;
  audit_events: AuditEventsTable;
  ip_rules: IpRulesTable;
  security_events: SecurityEventsTable;
  security_incidents: SecurityIncidentsTable;
  alert_rules: AlertRulesTable;
  alerts: AlertsTable;
  alert_history: AlertHistoryTable;
  alert_silences: AlertSilencesTable;
  alert_groups: AlertGroupsTable;
  notification_outbox: NotificationOutboxTable;
  leases: LeasesTable;
  metric_rollups: MetricRollupsTable;
}
