import type { Kysely, Migration } from 'kysely';

const TIME = 'varchar(32)';
const ID = 'varchar(64)';

/**
 * Alerting: rules created through the API, the current state of every alert and its history,
 * silences, notification groups, the notification outbox (durable delivery), and leases (one
 * instance evaluates and delivers).
 */
export const alerting: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('alert_rules')
      .addColumn('id', ID, (column) => column.primaryKey())
      .addColumn('name', 'varchar(200)', (column) => column.notNull().unique())
      .addColumn('definition', 'text', (column) => column.notNull())
      .addColumn('created_by', ID)
      .addColumn('created_at', TIME, (column) => column.notNull())
      .addColumn('updated_at', TIME, (column) => column.notNull())
      .execute();

    await db.schema
      .createTable('alerts')
      .addColumn('fingerprint', ID, (column) => column.primaryKey())
      .addColumn('rule_name', 'varchar(200)', (column) => column.notNull())
      .addColumn('status', 'varchar(16)', (column) => column.notNull())
      .addColumn('severity', 'varchar(16)', (column) => column.notNull())
      .addColumn('labels', 'text', (column) => column.notNull())
      .addColumn('annotations', 'text', (column) => column.notNull())
      .addColumn('value', 'double precision')
      .addColumn('pending_since', TIME)
      .addColumn('started_at', TIME)
      .addColumn('ended_at', TIME)
      .addColumn('acknowledged_by', ID)
      .addColumn('acknowledged_at', TIME)
      .addColumn('escalated_at', TIME)
      .addColumn('updated_at', TIME, (column) => column.notNull())
      .execute();
    await db.schema.createIndex('alerts_status').on('alerts').columns(['status', 'updated_at']).execute();

    await db.schema
      .createTable('alert_history')
      .addColumn('id', ID, (column) => column.primaryKey())
      .addColumn('fingerprint', ID, (column) => column.notNull())
      .addColumn('rule_name', 'varchar(200)', (column) => column.notNull())
      .addColumn('event', 'varchar(32)', (column) => column.notNull())
      .addColumn('severity', 'varchar(16)', (column) => column.notNull())
      .addColumn('value', 'double precision')
      .addColumn('details', 'text', (column) => column.notNull())
      .addColumn('at', TIME, (column) => column.notNull())
      .execute();
    await db.schema.createIndex('alert_history_at').on('alert_history').columns(['at', 'id']).execute();

    await db.schema
      .createTable('alert_silences')
      .addColumn('id', ID, (column) => column.primaryKey())
      .addColumn('matchers', 'text', (column) => column.notNull())
      .addColumn('starts_at', TIME, (column) => column.notNull())
      .addColumn('ends_at', TIME, (column) => column.notNull())
      .addColumn('created_by', ID)
      .addColumn('author', 'varchar(200)', (column) => column.notNull())
      .addColumn('comment', 'text', (column) => column.notNull())
      .addColumn('created_at', TIME, (column) => column.notNull())
      .execute();

    await db.schema
      .createTable('alert_groups')
      .addColumn('group_key', 'varchar(300)', (column) => column.primaryKey())
      .addColumn('first_seen_at', TIME, (column) => column.notNull())
      .addColumn('last_sent_at', TIME)
      .addColumn('last_digest', 'varchar(128)')
      .execute();

    await db.schema
      .createTable('notification_outbox')
      .addColumn('id', ID, (column) => column.primaryKey())
      .addColumn('idempotency_key', 'varchar(200)', (column) => column.notNull().unique())
      .addColumn('channel', 'varchar(64)', (column) => column.notNull())
      .addColumn('payload', 'text', (column) => column.notNull())
      .addColumn('status', 'varchar(16)', (column) => column.notNull())
      .addColumn('attempts', 'integer', (column) => column.notNull())
      .addColumn('next_attempt_at', TIME, (column) => column.notNull())
      .addColumn('last_error', 'text')
      .addColumn('created_at', TIME, (column) => column.notNull())
      .addColumn('updated_at', TIME, (column) => column.notNull())
      .addColumn('delivered_at', TIME)
      .execute();
    await db.schema
      .createIndex('notification_outbox_due')
      .on('notification_outbox')
      .columns(['status', 'next_attempt_at'])
      .execute();

    await db.schema
      .createTable('leases')
      .addColumn('name', 'varchar(64)', (column) => column.primaryKey())
      .addColumn('holder', 'varchar(128)', (column) => column.notNull())
      .addColumn('expires_at', 'double precision', (column) => column.notNull())
      .execute();
  },
  async down(db: Kysely<unknown>) {
    for (const table of [
      'leases',
      'notification_outbox',
      'alert_groups',
      'alert_silences',
      'alert_history',
      'alerts',
      'alert_rules',
    ]) {
      await db.schema.dropTable(table).execute();
    }
  },
};
