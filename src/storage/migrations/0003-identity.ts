import { type Kysely, type Migration, sql } from 'kysely';

const TIME = 'varchar(32)';
const ID = 'varchar(64)';

/**
 * Identity and the reference API: users, sessions (refresh-token families), MFA, signing keys,
 * API keys, organizations and memberships, workflows with versions, integrations and audit events.
 * Booleans are integers (0/1) and times ISO-8601 strings, so the same queries run on both engines.
 */
export const identity: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('users')
      .addColumn('id', ID, (column) => column.primaryKey())
      .addColumn('email', 'text', (column) => column.notNull())
      .addColumn('email_index', 'varchar(64)', (column) => column.notNull().unique())
      .addColumn('name', 'varchar(200)')
      .addColumn('password_hash', 'text', (column) => column.notNull())
      .addColumn('platform_admin', 'integer', (column) => column.notNull().defaultTo(0))
      .addColumn('status', 'varchar(16)', (column) => column.notNull())
      .addColumn('mfa_enabled', 'integer', (column) => column.notNull().defaultTo(0))
      .addColumn('password_changed_at', TIME, (column) => column.notNull())
      .addColumn('last_login_at', TIME)
      .addColumn('created_at', TIME, (column) => column.notNull())
      .addColumn('updated_at', TIME, (column) => column.notNull())
      .execute();

    await db.schema
      .createTable('user_mfa')
      .addColumn('user_id', ID, (column) => column.primaryKey().references('users.id').onDelete('cascade'))
      .addColumn('totp_secret', 'text', (column) => column.notNull())
      .addColumn('state', 'varchar(16)', (column) => column.notNull())
      .addColumn('last_used_step', 'bigint')
      .addColumn('created_at', TIME, (column) => column.notNull())
      .addColumn('enabled_at', TIME)
      .execute();
    await db.schema
      .createTable('mfa_backup_codes')
      .addColumn('user_id', ID, (column) => column.notNull().references('users.id').onDelete('cascade'))
      .addColumn('code_hash', 'varchar(64)', (column) => column.notNull())
      .addColumn('used_at', TIME)
      .addPrimaryKeyConstraint('mfa_backup_codes_pk', ['user_id', 'code_hash'])
      .execute();

    await db.schema
      .createTable('sessions')
      .addColumn('id', ID, (column) => column.primaryKey())
      .addColumn('user_id', ID, (column) => column.notNull().references('users.id').onDelete('cascade'))
      .addColumn('created_at', TIME, (column) => column.notNull())
      .addColumn('last_seen_at', TIME, (column) => column.notNull())
      .addColumn('expires_at', TIME, (column) => column.notNull())
      .addColumn('revoked_at', TIME)
      .addColumn('revoked_reason', 'varchar(64)')
      .addColumn('mfa', 'integer', (column) => column.notNull().defaultTo(0))
      .addColumn('ip', 'varchar(64)')
      .addColumn('user_agent', 'varchar(512)')
      .execute();
    await db.schema.createIndex('sessions_user').on('sessions').column('user_id').execute();
    await db.schema
      .createTable('refresh_tokens')
      .addColumn('token_hash', 'varchar(64)', (column) => column.primaryKey())
      .addColumn('session_id', ID, (column) => column.notNull().references('sessions.id').onDelete('cascade'))
      .addColumn('created_at', TIME, (column) => column.notNull())
      .addColumn('used_at', TIME)
      .execute();
    await db.schema.createIndex('refresh_tokens_session').on('refresh_tokens').column('session_id').execute();

    await db.schema
      .createTable('signing_keys')
      .addColumn('id', ID, (column) => column.primaryKey())
      .addColumn('algorithm', 'varchar(16)', (column) => column.notNull())
      .addColumn('public_jwk', 'text', (column) => column.notNull())
      .addColumn('private_jwk', 'text', (column) => column.notNull())
      .addColumn('state', 'varchar(16)', (column) => column.notNull())
      .addColumn('created_at', TIME, (column) => column.notNull())
      .addColumn('retired_at', TIME)
      .execute();
    await db.schema
      .createIndex('signing_keys_one_active')
      .on('signing_keys')
      .column('state')
      .unique()
      .where(sql.ref('state'), '=', 'active')
      .execute();

    await db.schema
      .createTable('organizations')
      .addColumn('id', ID, (column) => column.primaryKey())
      .addColumn('name', 'varchar(200)', (column) => column.notNull())
      .addColumn('created_by', ID)
      .addColumn('created_at', TIME, (column) => column.notNull())
      .addColumn('updated_at', TIME, (column) => column.notNull())
      .execute();
    await db.schema
      .createTable('memberships')
      .addColumn('org_id', ID, (column) =>
        column.notNull().references('organizations.id').onDelete('cascade'),
      )
      .addColumn('user_id', ID, (column) => column.notNull().references('users.id').onDelete('cascade'))
      .addColumn('role', 'varchar(16)', (column) => column.notNull())
      .addColumn('created_at', TIME, (column) => column.notNull())
      .addColumn('updated_at', TIME, (column) => column.notNull())
      .addPrimaryKeyConstraint('memberships_pk', ['org_id', 'user_id'])
      .execute();
    await db.schema.createIndex('memberships_user').on('memberships').column('user_id').execute();

    await db.schema
      .createTable('api_keys')
      .addColumn('id', ID, (column) => column.primaryKey())
      .addColumn('org_id', ID, (column) =>
        column.notNull().references('organizations.id').onDelete('cascade'),
      )
      .addColumn('name', 'varchar(200)', (column) => column.notNull())
      .addColumn('secret_hash', 'varchar(64)', (column) => column.notNull())
      .addColumn('permissions', 'text', (column) => column.notNull())
      .addColumn('created_by', ID)
      .addColumn('created_at', TIME, (column) => column.notNull())
      .addColumn('expires_at', TIME)
      .addColumn('last_used_at', TIME)
      .addColumn('revoked_at', TIME)
      .execute();
    await db.schema.createIndex('api_keys_org').on('api_keys').column('org_id').execute();

    await db.schema
      .createTable('workflows')
      .addColumn('id', ID, (column) => column.primaryKey())
      .addColumn('org_id', ID, (column) =>
        column.notNull().references('organizations.id').onDelete('cascade'),
      )
      .addColumn('name', 'varchar(200)', (column) => column.notNull())
      .addColumn('description', 'text')
      .addColumn('definition', 'text', (column) => column.notNull())
      .addColumn('version', 'integer', (column) => column.notNull())
      .addColumn('created_by', ID)
      .addColumn('created_at', TIME, (column) => column.notNull())
      .addColumn('updated_at', TIME, (column) => column.notNull())
      .execute();
    await db.schema.createIndex('workflows_org').on('workflows').columns(['org_id', 'id']).execute();
    await db.schema
      .createTable('workflow_versions')
      .addColumn('workflow_id', ID, (column) =>
        column.notNull().references('workflows.id').onDelete('cascade'),
      )
      .addColumn('version', 'integer', (column) => column.notNull())
      .addColumn('name', 'varchar(200)', (column) => column.notNull())
      .addColumn('description', 'text')
      .addColumn('definition', 'text', (column) => column.notNull())
      .addColumn('created_by', ID)
      .addColumn('created_at', TIME, (column) => column.notNull())
      .addPrimaryKeyConstraint('workflow_versions_pk', ['workflow_id', 'version'])
      .execute();

    await db.schema
      .createTable('integrations')
      .addColumn('id', ID, (column) => column.primaryKey())
      .addColumn('org_id', ID, (column) =>
        column.notNull().references('organizations.id').onDelete('cascade'),
      )
      .addColumn('name', 'varchar(200)', (column) => column.notNull())
      .addColumn('type', 'varchar(64)', (column) => column.notNull())
      .addColumn('url', 'varchar(2048)', (column) => column.notNull())
      .addColumn('secret_name', 'varchar(200)', (column) => column.notNull())
      .addColumn('created_by', ID)
      .addColumn('created_at', TIME, (column) => column.notNull())
      .addColumn('updated_at', TIME, (column) => column.notNull())
      .addColumn('last_test_at', TIME)
      .addColumn('last_test_status', 'varchar(32)')
      .execute();
    await db.schema.createIndex('integrations_org').on('integrations').columns(['org_id', 'id']).execute();

    await db.schema
      .createTable('audit_events')
      .addColumn('id', ID, (column) => column.primaryKey())
      .addColumn('org_id', ID)
      .addColumn('category', 'varchar(16)', (column) => column.notNull())
      .addColumn('action', 'varchar(64)', (column) => column.notNull())
      .addColumn('outcome', 'varchar(16)', (column) => column.notNull())
      .addColumn('actor_type', 'varchar(16)', (column) => column.notNull())
      .addColumn('actor_id', ID)
      .addColumn('target_type', 'varchar(32)')
      .addColumn('target_id', ID)
      .addColumn('ip', 'varchar(64)')
      .addColumn('user_agent', 'varchar(512)')
      .addColumn('request_id', 'varchar(128)')
      .addColumn('details', 'text', (column) => column.notNull())
      .addColumn('created_at', TIME, (column) => column.notNull())
      .execute();
    await db.schema.createIndex('audit_events_org').on('audit_events').columns(['org_id', 'id']).execute();
    await db.schema
      .createIndex('audit_events_actor')
      .on('audit_events')
      .columns(['actor_id', 'id'])
      .execute();
  },
  async down(db: Kysely<unknown>) {
    for (const table of [
      'audit_events',
      'integrations',
      'workflow_versions',
      'workflows',
      'api_keys',
      'memberships',
      'organizations',
      'signing_keys',
      'refresh_tokens',
      'sessions',
      'mfa_backup_codes',
      'user_mfa',
      'users',
    ]) {
      await db.schema.dropTable(table).execute();
    }
  },
};
