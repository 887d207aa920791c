import type { Kysely, Migration } from 'kysely';

const TIME = 'varchar(32)';
const ID = 'varchar(64)';

/**
 * API protection: IP allow and deny rules (from the API and automatic bans; the config file's
 * rules live in the config) and security events (attack findings, blocks, bans).
 */
export const protection: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('ip_rules')
      .addColumn('id', ID, (column) => column.primaryKey())
      .addColumn('cidr', 'varchar(64)', (column) => column.notNull())
      .addColumn('action', 'varchar(8)', (column) => column.notNull())
      .addColumn('reason', 'varchar(500)', (column) => column.notNull())
      .addColumn('source', 'varchar(8)', (column) => column.notNull())
      .addColumn('created_by', ID)
      .addColumn('created_at', TIME, (column) => column.notNull())
      .addColumn('expires_at', TIME)
      .execute();
    await db.schema.createIndex('ip_rules_cidr').on('ip_rules').column('cidr').execute();

    await db.schema
      .createTable('security_events')
      .addColumn('id', ID, (column) => column.primaryKey())
      .addColumn('kind', 'varchar(32)', (column) => column.notNull())
      .addColumn('attack_class', 'varchar(32)')
      .addColumn('severity', 'varchar(16)', (column) => column.notNull())
      .addColumn('client_ip', 'varchar(64)')
      .addColumn('method', 'varchar(16)')
      .addColumn('route', 'varchar(256)')
      .addColumn('request_id', 'varchar(128)')
      .addColumn('blocked', 'integer', (column) => column.notNull().defaultTo(0))
      .addColumn('details', 'text', (column) => column.notNull())
      .addColumn('created_at', TIME, (column) => column.notNull())
      .execute();
    await db.schema.createIndex('security_events_time').on('security_events').column('created_at').execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('security_events').execute();
    await db.schema.dropTable('ip_rules').execute();
  },
};
