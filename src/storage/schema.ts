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

/** The whole database. */
export interface DatabaseSchema {
  instance_settings: InstanceSettingsTable;
}
