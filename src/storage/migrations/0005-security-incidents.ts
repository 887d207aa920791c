import type { Kysely, Migration } from 'kysely';

const TIME = 'varchar(32)';
const ID = 'varchar(64)';

/** Security incidents: related security events grouped, with a status an operator moves along. */
export const securityIncidents: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('security_incidents')
      .addColumn('id', ID, (column) => column.primaryKey())
      .addColumn('group_key', 'varchar(200)', (column) => column.notNull())
      .addColumn('kind', 'varchar(32)', (column) => column.notNull())
      .addColumn('severity', 'varchar(16)', (column) => column.notNull())
      .addColumn('client_ip', 'varchar(64)')
      .addColumn('status', 'varchar(16)', (column) => column.notNull())
      .addColumn('event_count', 'integer', (column) => column.notNull())
      .addColumn('first_seen_at', TIME, (column) => column.notNull())
      .addColumn('last_seen_at', TIME, (column) => column.notNull())
      .addColumn('acknowledged_by', ID)
      .addColumn('acknowledged_at', TIME)
      .addColumn('resolved_by', ID)
      .addColumn('resolved_at', TIME)
      .execute();
    await db.schema
      .createIndex('security_incidents_group')
      .on('security_incidents')
      .columns(['group_key', 'last_seen_at'])
      .execute();
    await db.schema
      .createIndex('security_incidents_status')
      .on('security_incidents')
      .columns(['status', 'id'])
      .execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('security_incidents').execute();
  },
};
