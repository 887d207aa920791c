import { type Kysely, type Migration, sql } from 'kysely';

/** Data keys wrapped by the master key, and the secrets vault. */
export const dataProtection: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('data_keys')
      .addColumn('id', 'varchar(32)', (column) => column.primaryKey())
      .addColumn('purpose', 'varchar(32)', (column) => column.notNull())
      .addColumn('state', 'varchar(16)', (column) => column.notNull())
      .addColumn('wrapped_key', 'text', (column) => column.notNull())
      .addColumn('created_at', 'varchar(32)', (column) => column.notNull())
      .addColumn('state_changed_at', 'varchar(32)', (column) => column.notNull())
      .execute();
    // At most one active key per purpose, even when two instances start or rotate at once.
    await db.schema
      .createIndex('data_keys_one_active')
      .on('data_keys')
      .column('purpose')
      .unique()
      .where(sql.ref('state'), '=', 'active')
      .execute();

    await db.schema
      .createTable('secrets')
      .addColumn('name', 'varchar(200)', (column) => column.primaryKey())
      .addColumn('current_version', 'integer', (column) => column.notNull())
      .addColumn('rotation_period_days', 'integer')
      .addColumn('created_at', 'varchar(32)', (column) => column.notNull())
      .addColumn('rotated_at', 'varchar(32)', (column) => column.notNull())
      .addColumn('last_read_at', 'varchar(32)')
      .execute();
    await db.schema
      .createTable('secret_versions')
      .addColumn('name', 'varchar(200)', (column) =>
        column.notNull().references('secrets.name').onDelete('cascade'),
      )
      .addColumn('version', 'integer', (column) => column.notNull())
      .addColumn('value', 'text', (column) => column.notNull())
      .addColumn('created_at', 'varchar(32)', (column) => column.notNull())
      .addPrimaryKeyConstraint('secret_versions_pk', ['name', 'version'])
      .execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('secret_versions').execute();
    await db.schema.dropTable('secrets').execute();
    await db.schema.dropTable('data_keys').execute();
  },
};
