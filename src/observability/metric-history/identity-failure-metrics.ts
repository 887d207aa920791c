import { Counter, type Registry } from 'prom-client';
import type { AuditEventInput } from '../../identity/audit-log.ts';
import { feedIdentityFailures, type ThreatScores } from '../../protection/threat-scores.ts';

/**
 * Registers `bastion_identity_failures_total` and returns the handler to give
 * `identity.audit.onRecorded`: it counts the events threat scoring counts as identity failures
 * (failed sign-ins, MFA codes, rejected API keys, reused refresh tokens — from a client address).
 */
export function identityFailureMetrics(registry: Registry): (event: AuditEventInput) => void {
  const failures = new Counter({
    name: 'bastion_identity_failures_total',
    help: 'Failed sign-ins and token misuse (the identity failures threat scoring counts).',
    registers: [registry],
  });
  // `feedIdentityFailures` owns the list of what is a failure and calls `identityFailure` once
  // per failure, so the counter follows that list instead of a copy of it.
  const counting: Pick<ThreatScores, 'identityFailure'> = {
    identityFailure: async () => failures.inc(),
  };
  return feedIdentityFailures(counting as ThreatScores);
}
