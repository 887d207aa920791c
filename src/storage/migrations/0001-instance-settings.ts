import type { Kysely, Migration } from 'kysely';

/** Instance-wide settings (instance id, first start) that every instance behind a balancer shares. */
export const instanceSettings: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('instance_settings')
      .addColumn('key', 'varchar(100)', (column) => column.primaryKey())
      .addColumn('value', 'text', (column) => column.notNull())
      .addColumn('updated_at', 'varchar(32)', (column) => column.notNull())
      .execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('instance_settings').execute();
  },
};
