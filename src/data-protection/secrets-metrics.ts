import { Gauge, type Registry } from 'prom-client';
import type { SecretsVault } from './secrets-vault.ts';

/**
 * `bastion_secrets_rotation_overdue`: how many secrets are past their rotation period, read from
 * the database at scrape time only (nothing runs per request or between scrapes).
 */
export function registerSecretsMetrics(registry: Registry, vault: SecretsVault): void {
  new Gauge({
    name: 'bastion_secrets_rotation_overdue',
    help: 'Secrets in the vault past their rotation period.',
    registers: [registry],
    async collect() {
      try {
        this.set((await vault.overdue()).length);
      } catch {
        // The database outage is reported by its own check; keeping the last count is better for
        // an alert than a 0 that would look like "all rotated".
      }
    },
  });
}
