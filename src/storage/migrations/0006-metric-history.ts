import type { Kysely, Migration } from 'kysely';

const TIME = 'varchar(32)';
const ID = 'varchar(64)';
const REAL = 'double precision';

/**
 * Metric history: per-minute rollups of every series, one row per series, resolution ('1m' or
 * '1h'), bucket start and instance, holding what every aggregation needs (sample count, sum,
 * min, max, last; numerator and denominator of ratios; latency buckets). Bucket starts are
 * milliseconds since the epoch, so windows are plain numeric ranges on both engines.
 */
export const metricHistory: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('metric_rollups')
      .addColumn('series', 'varchar(100)', (column) => column.notNull())
      .addColumn('resolution', 'varchar(4)', (column) => column.notNull())
      .addColumn('bucket_start', REAL, (column) => column.notNull())
      .addColumn('instance_id', ID, (column) => column.notNull())
      .addColumn('sample_count', 'integer', (column) => column.notNull())
      .addColumn('value_sum', REAL, (column) => column.notNull())
      .addColumn('value_min', REAL)
      .addColumn('value_max', REAL)
      .addColumn('value_last', REAL)
      .addColumn('numerator', REAL, (column) => column.notNull())
      .addColumn('denominator', REAL, (column) => column.notNull())
      .addColumn('hist_sum', REAL, (column) => column.notNull())
      .addColumn('hist_count', REAL, (column) => column.notNull())
      .addColumn('buckets', 'text')
      .addColumn('updated_at', TIME, (column) => column.notNull())
      .addPrimaryKeyConstraint('metric_rollups_pk', ['series', 'resolution', 'bucket_start', 'instance_id'])
      .execute();
    // Compaction and retention scan by age across every series.
    await db.schema
      .createIndex('metric_rollups_age')
      .on('metric_rollups')
      .columns(['resolution', 'bucket_start'])
      .execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('metric_rollups').execute();
  },
};
