import type { Migration } from 'kysely';
import { instanceSettings } from './migrations/0001-instance-settings.ts';
import { dataProtection } from './migrations/0002-data-protection.ts';
import { identity } from './migrations/0003-identity.ts';
import { protection } from './migrations/0004-protection.ts';
import { securityIncidents } from './migrations/0005-security-incidents.ts';
import { metricHistory } from './migrations/0006-metric-history.ts';
import { alerting } from './migrations/0007-alerting.ts';

/**
 * Every migration, in order. Names sort lexically and never change once released; the same
 * migrations run on SQLite and PostgreSQL.
 */
export const MIGRATIONS: Readonly<Record<string, Migration>> = {
  '0001-instance-settings': instanceSettings,
  '0002-data-protection': dataProtection,
  '0003-identity': identity,
  '0004-protection': protection,
  '0005-security-incidents': securityIncidents,
  '0006-metric-history': metricHistory,
  '0007-alerting': alerting,
};
